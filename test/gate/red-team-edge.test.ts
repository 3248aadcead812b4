/**
 * The request path attacked from the client's side, asserted on what the origin receives: identity
 * and forwarding headers in odd spellings and shapes, hop-by-hop games, requests dressed as CORS
 * preflights, Authorization headers doubled or mixed, credentials moved to another path, method or
 * query, the gate's own prefix spelled otherwise, WebSocket handshakes in odd shapes. Each test
 * names what the origin must never see, and most show the same request otherwise accepted.
 */
import { exports } from 'cloudflare:workers'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { uriMatchesTarget } from '../../src/gate/request-path.ts'
import {
  authorization,
  captureDecisions,
  challengeOf,
  client,
  type FakeAuthority,
  type FakeOrigin,
  GATE,
  type GateFetch,
  gate,
  installPeers,
} from './fakes.ts'

let authority: FakeAuthority
let origin: FakeOrigin
beforeEach(() => {
  ;({ authority, origin } = installPeers())
  captureDecisions()
})
afterEach(() => {
  vi.restoreAllMocks()
})

const worker: GateFetch = (req) => exports.default.fetch(req)
const ADMIN = { authorization: 'Bearer test-admin-token-0123456789abcdef0123' }
const seen = (i = 0) => origin.requests[i]?.headers ?? {}

describe('identity headers a client sends', () => {
  /** Each identity header twice (two fields, which Headers joins with ", "), values comma-joined. */
  function doubled(): Headers {
    const h = new Headers()
    for (const [name, value] of [
      ['X-Auth-User', 'mallory'],
      ['x-auth-user', 'root'],
      ['X-AUTH-GROUPS', 'admin'],
      ['x-auth-groups', 'admin, ops'],
      ['X-Auth-Assertion', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290In0.'],
      ['x-auth-assertion', 'forged'],
      ['X_AUTH_USER', 'mallory'],
      ['x-auth_groups', 'admin'],
    ] as const) {
      h.append(name, value)
    }
    return h
  }

  it('cannot be named with trailing spaces or tabs: workerd refuses such names', () => {
    for (const name of ['x-auth-user ', 'x-auth-user\t', ' x-auth-user', 'x-auth user']) {
      expect(() => new Headers({ [name]: 'mallory' }), JSON.stringify(name)).toThrow(TypeError)
    }
  })

  it('doubled and comma-joined, on a public route: the origin gets no identity at all', async () => {
    const res = await worker(new Request(`${GATE}/public/page`, { headers: doubled() }))
    expect(res.status).toBe(200)
    const h = seen()
    for (const name of Object.keys(h)) expect(name).not.toMatch(/auth[-_](user|groups|assertion)/)
    expect(JSON.stringify(h)).not.toMatch(/mallory|root|admin|forged/)
  })

  it('doubled and comma-joined, on a private route: only bob, once, with the gate’s assertion', async () => {
    const bob = client(worker, 'bob', 'builder')
    const res = await bob.fetch('/private/page', { headers: doubled() })
    expect(res.status).toBe(200)
    const h = seen()
    expect(h['x-auth-user']).toBe('bob')
    expect(h['x-auth-groups']).toBe('')
    const assertion = h['x-auth-assertion'] ?? ''
    expect(assertion.split('.')).toHaveLength(3)
    expect(
      JSON.parse(atob((assertion.split('.')[1] ?? '').replace(/-/g, '+').replace(/_/g, '/')))
    ).toMatchObject({ sub: 'bob', groups: [] })
    expect(JSON.stringify(h)).not.toMatch(/mallory|root|admin|forged/)
  })
})

describe('hop-by-hop games', () => {
  /** A client naming the gate's own headers as hop-by-hop, and every connection-level field. */
  const HOP = {
    Connection: 'x-auth-user, x-auth-groups, x-auth-assertion, authorization, close, upgrade',
    Upgrade: 'h2c',
    'HTTP2-Settings': 'AAMAAABkAARAAAAAAAIAAAAA',
    TE: 'trailers, deflate',
    Trailer: 'x-auth-user',
    'Keep-Alive': 'timeout=5',
    'Proxy-Authorization': 'Basic bWFsbG9yeTp4',
    'Proxy-Authenticate': 'Basic realm="x"',
  }

  it('a Connection list naming the identity headers removes nothing the gate sets', async () => {
    const bob = client(worker, 'bob', 'builder')
    expect((await bob.fetch('/private/hop', { headers: HOP })).status).toBe(200)
    const h = seen()
    expect(h['x-auth-user']).toBe('bob')
    expect(h['x-auth-groups']).toBe('')
    expect(h['x-auth-assertion']).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/)
    for (const name of ['connection', 'upgrade', 'te', 'trailer', 'keep-alive']) {
      expect(h[name], name).toBeUndefined()
    }
    expect(h['proxy-authorization']).toBeUndefined()
    expect(h['proxy-authenticate']).toBeUndefined()
    expect(h.authorization).toBeUndefined()
  })

  it('on a public route too, and Upgrade: h2c with Connection: upgrade is a plain GET', async () => {
    const res = await gate()(new Request(`${GATE}/public/hop`, { headers: HOP }))
    expect(res.status).toBe(200)
    expect(res.webSocket).toBeNull()
    expect(origin.requests[0]?.method).toBe('GET')
    const h = seen()
    for (const name of Object.keys(HOP).filter((n) => n !== 'HTTP2-Settings')) {
      expect(h[name.toLowerCase()], name).toBeUndefined()
    }
  })
})

describe('forwarding headers a client sends', () => {
  const CLAIMS = {
    'X-Forwarded-Host': 'admin.internal',
    X_Forwarded_Host: 'admin.internal',
    'X-Forwarded-Proto': 'http',
    'x-forwarded_proto': 'http',
    'X-Forwarded-For': '10.0.0.1',
    X_Forwarded_For: '127.0.0.1',
    'X-Real-IP': '127.0.0.1',
    X_Real_IP: '127.0.0.1',
    Forwarded: 'for=127.0.0.1;host=admin.internal;proto=http',
    'X-Forwarded-Port': '8443',
    'X-Forwarded-Prefix': '/admin',
    'X-Forwarded-Ssl': 'off',
    'CF-Connecting-IP': '198.51.100.7',
  }

  function expectGateView(h: Record<string, string>) {
    expect(h['x-forwarded-host']).toBe('gate.test')
    expect(h['x-forwarded-proto']).toBe('https')
    // The client's claim stays in front (origins take the last, trusted hop); the rest is gone.
    expect(h['x-forwarded-for']).toBe('10.0.0.1, 198.51.100.7')
    expect(h['x-real-ip']).toBe('198.51.100.7')
    for (const name of [
      'x_forwarded_host',
      'x-forwarded_proto',
      'x_forwarded_for',
      'x_real_ip',
      'forwarded',
      'x-forwarded-port',
      'x-forwarded-prefix',
      'x-forwarded-ssl',
    ]) {
      expect(h[name], name).toBeUndefined()
    }
    expect(JSON.stringify(h)).not.toMatch(/admin\.internal|127\.0\.0\.1|8443|"\/admin"/)
  }

  it('reach the origin only as the gate’s own view: host, scheme and the address it saw', async () => {
    const anonymous = await worker(new Request(`${GATE}/public/fwd`, { headers: CLAIMS }))
    expect(anonymous.status).toBe(200)
    expectGateView(seen(0))
    const bob = client(worker, 'bob', 'builder')
    expect((await bob.fetch('/private/fwd', { headers: CLAIMS })).status).toBe(200)
    expect(seen(1)['x-auth-user']).toBe('bob')
    expectGateView(seen(1))
  })

  it('with no address known to the gate, the client’s X-Forwarded-For is passed on as sent', async () => {
    await gate()(new Request(`${GATE}/public/fwd`, { headers: { 'X-Forwarded-For': '10.0.0.9' } }))
    expect(seen()['x-forwarded-for']).toBe('10.0.0.9')
    expect(seen()['x-real-ip']).toBeUndefined()
  })

  it('X-Forwarded-For buys a guesser no new brake bucket: CF-Connecting-IP is the client', async () => {
    const g = gate({ BRAKE_CLIENT_FAILURES: '2' })
    const guess = (i: number, ip: string) =>
      client(g, `nobody-${i}`, 'guess').fetch('/private/x', {
        headers: {
          'cf-connecting-ip': ip,
          'x-forwarded-for': `192.0.2.${i}`,
          'x-real-ip': `192.0.2.${i}`,
        },
      })
    const statuses: number[] = []
    for (let i = 1; i <= 4; i++) statuses.push((await guess(i, '203.0.113.50')).status)
    // One bucket throughout, whatever the forwarding headers claimed: braked at its limit.
    expect(statuses).toEqual([401, 401, 401, 429])
    // Another address is another bucket: the brake above was the address's, not a global one.
    expect((await guess(5, '203.0.113.51')).status).toBe(401)
    expect(origin.requests).toHaveLength(0)
  })
})

describe('requests dressed as CORS preflights', () => {
  const PREFLIGHT = {
    Origin: 'https://app.example',
    'Access-Control-Request-Method': 'DELETE',
  }

  it('a plain preflight still reaches the origin unauthenticated, Content-Length: 0 or none', async () => {
    for (const headers of [PREFLIGHT, { ...PREFLIGHT, 'Content-Length': '0' }]) {
      const res = await worker(new Request(`${GATE}/admin/users/7`, { method: 'OPTIONS', headers }))
      expect(res.status).toBe(200)
    }
    expect(origin.requests.map((r) => [r.method, r.body, r.headers['x-auth-user']])).toEqual([
      ['OPTIONS', '', undefined],
      ['OPTIONS', '', undefined],
    ])
  })

  it.each([
    ['a body', { body: 'id=7&confirm=yes' }],
    ['X-HTTP-Method-Override', { headers: { 'X-HTTP-Method-Override': 'DELETE' } }],
    ['X_HTTP_Method_Override', { headers: { X_HTTP_Method_Override: 'DELETE' } }],
    ['X-HTTP-Method', { headers: { 'X-HTTP-Method': 'DELETE' } }],
    ['X-Method-Override', { headers: { 'X-Method-Override': 'DELETE' } }],
    ['a cookie', { headers: { Cookie: 'origin_session=abc' } }],
  ] as const)('with %s: challenged, never forwarded', async (_what, extra) => {
    const headers = { ...PREFLIGHT, ...('headers' in extra ? extra.headers : {}) }
    const body = 'body' in extra ? extra.body : undefined
    const res = await worker(
      new Request(`${GATE}/admin/users/7`, { method: 'OPTIONS', headers, body })
    )
    expect(res.status).toBe(401)
    expect(challengeOf(res).nonce).not.toBe('')
    expect(origin.requests).toHaveLength(0)
    expect(authority.calls).toBe(0)
  })

  it('an authenticated OPTIONS with a body is forwarded with it (only the anonymous pass is narrowed)', async () => {
    const alice = client(worker, 'alice', 'wonderland')
    const res = await alice.fetch('/admin/users/7', {
      method: 'OPTIONS',
      headers: PREFLIGHT,
      body: 'id=7',
    })
    expect(res.status).toBe(200)
    expect(origin.requests.map((r) => [r.method, r.body, r.headers['x-auth-user']])).toEqual([
      ['OPTIONS', 'id=7', 'alice'],
    ])
  })
})

describe('credentials moved to another request', () => {
  /** bob's next Authorization for `method` and `path`, as his client would send it. */
  async function nextFor(method: string, path: string) {
    const bob = client(worker, 'bob', 'builder')
    expect((await bob.fetch('/private/first')).status).toBe(200)
    origin.requests.length = 0
    return (await bob.raw.authorizationFor(method, `${GATE}${path}`)) ?? ''
  }
  const send = (method: string, path: string, authorization: string) =>
    worker(new Request(`${GATE}${path}`, { method, headers: { authorization } }))

  it.each([
    ['another path', '/private/a', '/private/b'],
    ['a path the user may not reach', '/private/a', '/admin/panel'],
    ['the same path with a query', '/private/a', '/private/a?x=1'],
    ['the same path without its query', '/private/a?x=1', '/private/a'],
    ['another query', '/private/a?x=1', '/private/a?y=1'],
    ['another case, which is another path', '/private/a', '/private/A'],
  ])('on %s: 400 uri_mismatch, nothing forwarded', async (_what, madeFor, sentTo) => {
    const res = await send('GET', sentTo, await nextFor('GET', madeFor))
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ error: 'invalid_request' })
    expect(origin.requests).toHaveLength(0)
  })

  it('with another method (GET’s credentials on DELETE, or HEAD): 401, nothing forwarded', async () => {
    const header = await nextFor('GET', '/private/a')
    for (const method of ['DELETE', 'HEAD', 'POST']) {
      expect((await send(method, '/private/a', header)).status, method).toBe(401)
    }
    expect(origin.requests).toHaveLength(0)
    // The same header on its own method and target is accepted: the refusals above were real.
    expect((await send('GET', '/private/a', header)).status).toBe(200)
    expect(origin.requests.map((r) => r.path)).toEqual(['/private/a'])
  })

  it('a uri for a public path answered on a private one: 400, nothing forwarded', async () => {
    const { nonce, opaque } = challengeOf(await worker(new Request(`${GATE}/private/secret`)))
    const header = await authorization({
      user: 'bob',
      password: 'builder',
      nonce,
      opaque,
      uri: '/public/../private/secret/../../public/x',
    })
    expect((await send('GET', '/private/secret', header)).status).toBe(400)
    expect(origin.requests).toHaveLength(0)
    expect(authority.calls).toBe(0)
  })
})

describe('the query the uri vouches for', () => {
  const target = (search: string) => ({ path: '/private/q', search })

  it('an escaped &, =, +, ; or % is not the character: another query, refused', () => {
    for (const [uri, search] of [
      ['/private/q?a=%26admin=1', '?a=&admin=1'],
      ['/private/q?a%3Dadmin', '?a=admin'],
      ['/private/q?q=a%2Bb', '?q=a+b'],
      ['/private/q?a=1%3Bb=2', '?a=1;b=2'],
      ['/private/q?a=%2541', '?a=%41'],
    ] as const) {
      expect(uriMatchesTarget(uri, target(search)), uri).toBe(false)
      expect(uriMatchesTarget(uri, target(uri.slice(uri.indexOf('?')))), uri).toBe(true)
    }
  })

  it('other escapes still compare decoded, in either case of hex', () => {
    expect(uriMatchesTarget("/private/q?a='x y'", target('?a=%27x%20y%27'))).toBe(true)
    expect(uriMatchesTarget('/private/q?a=%c3%a9&b=%2b', target('?a=é&b=%2B'))).toBe(true)
  })

  it('property: a query matches itself; with one & escaped it matches no longer', () => {
    const part = fc.stringMatching(/^[a-z0-9=+;%'. -]{0,8}$/)
    fc.assert(
      fc.property(part, part, (a, b) => {
        const search = `?${a}&${b}`
        expect(uriMatchesTarget(`/private/q${search}`, target(search))).toBe(true)
        expect(uriMatchesTarget(`/private/q?${a}%26${b}`, target(search))).toBe(false)
      }),
      { numRuns: 2000 }
    )
  })

  it('at the gate: credentials for ?a=%26admin=1 sent with ?a=&admin=1 are a 400, never forwarded', async () => {
    const { nonce, opaque } = challengeOf(await worker(new Request(`${GATE}/private/q`)))
    const header = await authorization({
      user: 'bob',
      password: 'builder',
      nonce,
      opaque,
      uri: '/private/q?a=%26admin=1',
    })
    const moved = await worker(
      new Request(`${GATE}/private/q?a=&admin=1`, { headers: { authorization: header } })
    )
    expect(moved.status).toBe(400)
    expect(origin.requests).toHaveLength(0)
    // Sent where it was made for, the same header is accepted: the refusal above was the query.
    const res = await worker(
      new Request(`${GATE}/private/q?a=%26admin=1`, { headers: { authorization: header } })
    )
    expect(res.status).toBe(200)
    expect(origin.requests.map((r) => r.path)).toEqual(['/private/q?a=%26admin=1'])
  })
})

describe('Authorization header games', () => {
  async function valid(path: string): Promise<string> {
    const { nonce, opaque } = challengeOf(await worker(new Request(`${GATE}${path}`)))
    return authorization({ user: 'alice', password: 'wonderland', nonce, opaque, uri: path })
  }

  it('two Authorization fields (a valid one first or last): 400, authority never asked', async () => {
    const good = await valid('/private/two')
    for (const other of ['Digest username="bob"', 'Basic YWxpY2U6d29uZGVybGFuZA==', good]) {
      for (const order of [
        [good, other],
        [other, good],
      ]) {
        const h = new Headers()
        for (const v of order) h.append('authorization', v)
        const res = await worker(new Request(`${GATE}/private/two`, { headers: h }))
        expect([400, 401], `${order[0]?.slice(0, 12)} + ${order[1]?.slice(0, 12)}`).toContain(
          res.status
        )
      }
    }
    expect(origin.requests).toHaveLength(0)
    expect(authority.calls).toBe(0)
  })

  it('Digest and Basic in one field, either order: never accepted', async () => {
    const good = await valid('/private/mix')
    for (const header of [
      `${good}, Basic YWxpY2U6d29uZGVybGFuZA==`,
      `Basic YWxpY2U6d29uZGVybGFuZA==, ${good}`,
    ]) {
      const res = await worker(
        new Request(`${GATE}/private/mix`, { headers: { authorization: header } })
      )
      expect([400, 401]).toContain(res.status)
    }
    expect(origin.requests).toHaveLength(0)
    expect(authority.calls).toBe(0)
  })

  it('a directive repeated (response, uri, username, nonce): 400 before any I/O', async () => {
    const good = await valid('/private/dup')
    const repeats = [
      `response="${'0'.repeat(64)}"`,
      'uri="/public/x"',
      'username="bob"',
      `nonce="${challengeOf(await worker(new Request(`${GATE}/private/dup`))).nonce}"`,
    ]
    for (const extra of repeats) {
      for (const header of [`${good}, ${extra}`, good.replace(/^Digest /, `Digest ${extra}, `)]) {
        const res = await worker(
          new Request(`${GATE}/private/dup`, { headers: { authorization: header } })
        )
        expect(res.status, extra).toBe(400)
      }
    }
    expect(origin.requests).toHaveLength(0)
    expect(authority.calls).toBe(0)
    // The header itself is good: without the repeats it logs alice in.
    expect(
      (await worker(new Request(`${GATE}/private/dup`, { headers: { authorization: good } })))
        .status
    ).toBe(200)
  })

  it('a huge header (a valid one padded past the limit): 400, not 431 or 5xx', async () => {
    const good = await valid('/private/huge')
    const header = `${good}, x="${'a'.repeat(9000)}"`
    const res = await worker(
      new Request(`${GATE}/private/huge`, { headers: { authorization: header } })
    )
    expect(res.status).toBe(400)
    expect(origin.requests).toHaveLength(0)
    expect(authority.calls).toBe(0)
  })

  it('the algorithm in another case is the same algorithm; an unknown one is a 400', async () => {
    const good = await valid('/private/alg')
    const lower = good.replace('algorithm=SHA-256', 'algorithm=sha-256')
    expect(lower).not.toBe(good)
    const res = await worker(
      new Request(`${GATE}/private/alg`, { headers: { authorization: lower } })
    )
    expect(res.status).toBe(200)
    expect(origin.requests.map((r) => r.headers['x-auth-user'])).toEqual(['alice'])
    const unknown = good.replace('algorithm=SHA-256', 'algorithm=SHA-1')
    const refused = await worker(
      new Request(`${GATE}/private/alg`, { headers: { authorization: unknown } })
    )
    expect(refused.status).toBe(400)
    expect(origin.requests).toHaveLength(1)
  })

  it('Authorization on a public route is dropped, whatever it holds', async () => {
    const { nonce, opaque } = challengeOf(await worker(new Request(`${GATE}/private/page`)))
    const good = await authorization({
      user: 'alice',
      password: 'wonderland',
      nonce,
      opaque,
      uri: '/public/page',
    })
    await worker(new Request(`${GATE}/public/page`, { headers: { authorization: good } }))
    await worker(
      new Request(`${GATE}/public/page`, { headers: { authorization: 'Bearer origin-token' } })
    )
    expect(origin.requests).toHaveLength(2)
    for (const r of origin.requests) {
      expect(r.headers.authorization).toBeUndefined()
      expect(r.headers['x-auth-user']).toBeUndefined()
    }
    expect(authority.calls).toBe(0)
  })
})

describe('the gate’s own prefix, spelled otherwise', () => {
  /** alice logs in, `attempt` runs, and alice must still be verified at the edge (not revoked). */
  async function aliceSurvives(attempt: () => Promise<Response>): Promise<Response> {
    const alice = client(worker, 'alice', 'wonderland')
    expect((await alice.fetch('/private/before')).status).toBe(200)
    const calls = authority.calls
    origin.requests.length = 0
    const res = await attempt()
    expect(origin.requests).toHaveLength(0)
    expect((await alice.fetch('/private/after')).status).toBe(200)
    expect(authority.calls).toBe(calls)
    return res
  }

  it.each([
    '/%2Edigest-gate/healthz',
    '/.Digest-Gate/admin/users/digest-gate/alice/revoke',
    '/.dıgest-gate/admin/users/digest-gate/alice/revoke',
    '/.DIGEST-GATE/jwks.json',
    '//.digest-gate/admin/users/digest-gate/alice/revoke',
    '/.digest-gate./admin/users/digest-gate/alice/revoke',
  ])(
    '%s, even with the admin token: 404 or 400, never the origin, no admin action',
    async (path) => {
      const res = await aliceSurvives(() =>
        worker(new Request(`${GATE}${path}`, { method: 'POST', headers: ADMIN }))
      )
      expect([400, 404]).toContain(res.status)
    }
  )

  it.each([
    '/%2edigest-gate/admin/users/digest-gate/alice/revoke',
    '/.digest-gate/%61dmin/users/digest-gate/alice/revoke',
    '/public/../.digest-gate/admin/users/digest-gate/alice/revoke',
  ])('%s, read as the admin route: still needs the token (401), never the origin', async (path) => {
    const res = await aliceSurvives(() =>
      worker(
        new Request(`${GATE}${path}`, {
          method: 'POST',
          headers: { authorization: 'Bearer not-the-admin-token-0123456789abcdef' },
        })
      )
    )
    expect(res.status).toBe(401)
  })
})

describe('WebSocket handshakes in odd shapes', () => {
  const HANDSHAKE = {
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '13',
  }

  it.each(['WebSocket', ' websocket ', 'WEBSOCKET'])(
    'Upgrade: %j without credentials: 401, no socket, nothing forwarded',
    async (upgrade) => {
      const res = await gate()(
        new Request(`${GATE}/private/ws`, { headers: { ...HANDSHAKE, Upgrade: upgrade } })
      )
      expect(res.status).toBe(401)
      expect(res.webSocket).toBeNull()
      expect(origin.requests).toHaveLength(0)
    }
  )

  it('HEAD or OPTIONS with Upgrade: websocket on a public route: forwarded without the upgrade', async () => {
    const g = gate()
    for (const method of ['HEAD', 'OPTIONS']) {
      const res = await g(
        new Request(`${GATE}/public/ws`, {
          method,
          headers: { ...HANDSHAKE, Upgrade: 'websocket' },
        })
      )
      expect(res.webSocket).toBeNull()
    }
    expect(origin.requests.map((r) => [r.method, r.headers.upgrade, r.headers.connection])).toEqual(
      [
        ['HEAD', undefined, undefined],
        ['OPTIONS', undefined, undefined],
      ]
    )
  })
})
