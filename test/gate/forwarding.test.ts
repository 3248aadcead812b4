/**
 * Forwarding hygiene, asserted on what the origin receives: identity headers in any spelling and
 * path-override headers never reach it, on public and private routes; authenticated exchanges
 * stay out of shared caches; refusals are never stored.
 */
import { env, exports } from 'cloudflare:workers'
import { Hono } from 'hono'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createDigestClient } from '../../src/digest/client.ts'
import { durableObjectContexts } from '../../src/entries/cloudflare.ts'
import { digestAuth, httpAuthority } from '../../src/entries/index.ts'
import {
  captureDecisions,
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

/** A client's attempts to speak for someone, in the spellings origins read alike. */
const SPOOFED = {
  X_Auth_User: 'mallory',
  'X.Auth.User': 'mallory',
  'x-auth-groups': 'admin',
  X_Auth_Groups: 'admin',
  X_AUTH_ASSERTION: 'forged',
  'Remote-User': 'mallory',
  Remote_User: 'mallory',
  'X-Remote-User': 'mallory',
  'X-Forwarded-User': 'mallory',
  X_Forwarded_Email: 'mallory@example.test',
  'X-Auth-Request-User': 'mallory',
  'X-Auth-Request-Email': 'mallory@example.test',
  'Cf-Access-Authenticated-User-Email': 'mallory@example.test',
  'Remote-Groups': 'admin',
  Remote_Email: 'mallory@example.test',
  'Remote-Name': 'mallory',
  'X-Forwarded-Groups': 'admin',
  'X-Forwarded-Preferred-Username': 'mallory',
  'X-Auth-Request-Groups': 'admin',
  X_Auth_Request_Preferred_Username: 'mallory',
  'X-WEBAUTH-USER': 'mallory',
  'X-Original-URL': '/admin/panel',
  X_Original_URL: '/admin/panel',
  'X-Rewrite-URL': '/admin/panel',
  'X-Original-URI': '/admin/panel',
  'X-Override-URL': '/admin/panel',
  'X-Harmless': 'kept',
}
/** Names the gate itself may set (in its own spelling) are checked by value instead. */
const NEVER_FORWARDED = Object.keys(SPOOFED)
  .filter((n) => n !== 'X-Harmless' && n !== 'x-auth-groups')
  .map((n) => n.toLowerCase())

function expectNoSpoofedHeaders(seen: Record<string, string>) {
  for (const name of NEVER_FORWARDED) expect(seen[name], name).toBeUndefined()
  // Only the gate's own spelling of the identity remains, and nothing but a harmless header.
  expect(Object.values(seen)).not.toContain('mallory')
  expect(seen['x-auth-groups']).not.toBe('admin')
  expect(seen['x-harmless']).toBe('kept')
}

describe('client headers', () => {
  it('never forwards spoofed identity or path overrides on a public route', async () => {
    const res = await worker(new Request(`${GATE}/public/page`, { headers: SPOOFED }))
    expect(res.status).toBe(200)
    const seen = origin.requests[0]?.headers ?? {}
    expectNoSpoofedHeaders(seen)
    expect(seen['x-auth-user']).toBeUndefined()
  })

  it('never forwards them on a private route, beside the real identity', async () => {
    const bob = client(worker, 'bob', 'builder')
    const res = await bob.fetch('/private/page', { headers: SPOOFED })
    expect(res.status).toBe(200)
    const seen = origin.requests[0]?.headers ?? {}
    expectNoSpoofedHeaders(seen)
    expect(seen['x-auth-user']).toBe('bob')
    expect(seen['x-auth-groups']).toBe('')
    expect(seen['x-auth-assertion']).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/)
  })

  it('strips STRIP_HEADERS in any spelling, beside renamed identity headers', async () => {
    const custom = gate({ STRIP_HEADERS: 'X-Webauth-User', IDENTITY_HEADER_USER: 'X-User' })
    const res = await custom(
      new Request(`${GATE}/public/page`, {
        headers: { X_WebAuth_User: 'mallory', x_user: 'mallory', 'X-Auth-User': 'kept' },
      })
    )
    expect(res.status).toBe(200)
    const seen = origin.requests[0]?.headers ?? {}
    expect(seen.x_webauth_user).toBeUndefined()
    expect(seen.x_user).toBeUndefined()
    // No longer an identity header here, so forwarded like any other.
    expect(seen['x-auth-user']).toBe('kept')
  })
})

describe('shared caches', () => {
  it('fetches authenticated requests with cache: no-store, public ones as before', async () => {
    await worker(new Request(`${GATE}/public/page`))
    const bob = client(worker, 'bob', 'builder')
    await bob.fetch('/private/page')
    expect(origin.requests.map((r) => r.cache)).toEqual([undefined, 'no-store'])
  })

  it('uses a cache mode this workerd supports (it refuses the others)', () => {
    expect(new Request(GATE, { cache: 'no-store' }).cache).toBe('no-store')
    expect(() => new Request(GATE, { cache: 'reload' as 'no-store' })).toThrow(/cache mode/i)
  })

  it.each([
    [undefined, 'private'],
    ['public, max-age=60, s-maxage=600', 'private, max-age=60'],
    ['max-age=60, proxy-revalidate, must-revalidate', 'private, max-age=60, must-revalidate'],
    ['private="set-cookie, x-y", max-age=5', 'private, max-age=5'],
    ['no-store', 'no-store'],
    ['public, no-store', 'public, no-store'],
  ])('marks an authenticated answer private: %s -> %s', async (sent, expected) => {
    origin.responseHeaders = {
      ...(sent === undefined ? {} : { 'cache-control': sent }),
      'cdn-cache-control': 'max-age=600',
      'cloudflare-cdn-cache-control': 'max-age=600',
      'surrogate-control': 'max-age=600',
    }
    const res = await client(worker, 'bob', 'builder').fetch('/private/page')
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe(expected)
    expect(res.headers.get('cdn-cache-control')).toBeNull()
    expect(res.headers.get('cloudflare-cdn-cache-control')).toBeNull()
    expect(res.headers.get('surrogate-control')).toBeNull()
  })

  it("leaves a public answer's caching to the origin", async () => {
    origin.responseHeaders = { 'cache-control': 'public, max-age=60' }
    const res = await worker(new Request(`${GATE}/public/page`))
    expect(res.headers.get('cache-control')).toBe('public, max-age=60')
  })
})

describe('refusals are never stored', () => {
  const noStore = (res: Response) => expect(res.headers.get('cache-control')).toBe('no-store')

  it('401, 400 (path and Authorization), 403', async () => {
    const challenge = await worker(new Request(`${GATE}/private/x`))
    expect(challenge.status).toBe(401)
    noStore(challenge)
    const badPath = await worker(new Request(`${GATE}/admin%2Fpanel`))
    expect(badPath.status).toBe(400)
    noStore(badPath)
    const badHeader = await worker(
      new Request(`${GATE}/private/x`, { headers: { authorization: 'Digest a="b' } })
    )
    expect(badHeader.status).toBe(400)
    noStore(badHeader)
    const forbidden = await client(worker, 'bob', 'builder').fetch('/admin/panel')
    expect(forbidden.status).toBe(403)
    noStore(forbidden)
  })

  it('429 and 503', async () => {
    const braked = gate({ BRAKE_USER_FAILURES: '1' })
    const wrong = client(braked, 'bob', 'wrong password')
    await wrong.fetch('/private/x')
    const tooMany = await wrong.fetch('/private/x')
    expect(tooMany.status).toBe(429)
    noStore(tooMany)
    authority.mode = 'down'
    const unavailable = await client(worker, 'alice', 'wonderland').fetch('/private/x')
    expect(unavailable.status).toBe(503)
    noStore(unavailable)
  })

  it('502 from an unreachable origin', async () => {
    origin.down = true
    const res = await client(worker, 'bob', 'builder').fetch('/private/x')
    expect(res.status).toBe(502)
    noStore(res)
  })
})

describe('digestAuth in an app that did not canonicalise', () => {
  function app() {
    const a = new Hono()
    a.use(
      '*',
      digestAuth({
        realm: 'digest-gate',
        serverId: 'gate-test',
        nonceKeys: { current: { id: 1, secret: 'k'.repeat(32) } },
        authority: httpAuthority({
          url: 'https://authority.test/v1/verify',
          token: (env as unknown as { AUTHORITY_TOKEN: string }).AUTHORITY_TOKEN,
        }),
        contexts: durableObjectContexts(env.CONTEXTS, env.USER_CONTEXTS),
        onDecision: () => {},
      })
    )
    a.get('*', (c) => c.text(new URL(c.req.url).pathname))
    return a
  }

  it('canonicalises itself: 400 for a path it cannot, and a uri that names the same path passes', async () => {
    const a = app()
    const refused = await a.request(new Request(`${GATE}/a%2Fb`))
    expect(refused.status).toBe(400)
    noStoreJson(refused)
    const alice = createDigestClient({
      username: 'alice',
      password: 'wonderland',
      fetch: async (input, init) => a.request(new Request(input as RequestInfo, init)),
    })
    expect((await alice.fetch(`${GATE}//x/%61/y;p=1`)).status).toBe(200)
  })
})

function noStoreJson(res: Response) {
  expect(res.headers.get('cache-control')).toBe('no-store')
  expect(res.headers.get('content-type')).toMatch(/json/)
}
