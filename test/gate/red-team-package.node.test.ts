/**
 * The npm package's forms attacked by someone who read the code: the simple form
 * (`digestAuth({ realm, users })`), its memory stores, its options, and the Digest client. Under
 * plain Node, as `npm install digest-gate hono` users run them.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import fc from 'fast-check'
import { Hono } from 'hono'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { computeRspauth } from '../../src/digest/algorithms.ts'
import { createDigestClient, RspauthMismatchError } from '../../src/digest/client.ts'
import { parseAuthorization } from '../../src/digest/header.ts'
import {
  type DigestAuthOptions,
  digestAuth,
  localAuthority,
  memoryBrakes,
  memoryContexts,
} from '../../src/entries/index.ts'
import { clientOf } from './support/app-client.ts'

const REALM = 'api'
type SimpleOptions = Omit<Extract<DigestAuthOptions, { users: unknown }>, 'realm'>

function gate(options: SimpleOptions & { realm?: string }) {
  const seen: string[] = []
  const a = new Hono()
  a.use('/private/*', digestAuth({ realm: REALM, onDecision: () => {}, ...options }))
  a.all('/private/*', (c) => {
    seen.push(c.var.digestAuth.principal.name)
    return c.json(c.var.digestAuth.principal)
  })
  return { app: a, seen }
}

const raw = (a: Hono, path: string, authorization: string, ip = '198.51.100.1') =>
  a.request(`https://app.test${path}`, { headers: { authorization, 'x-real-ip': ip } })

/** A challenge's shape with its per-request tokens blanked. */
const shape = (challenge: string | null) =>
  (challenge ?? '').replace(/(nonce|opaque)="[^"]*"/g, '$1=""')

afterEach(() => {
  vi.useRealTimers()
})

// Every hash the code computes, counted (the real function still does the work).
const hashCalls = vi.hoisted(() => ({ count: 0 }))
vi.mock('../../src/digest/hash.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/digest/hash.ts')>()
  return {
    ...real,
    hashHex: (...args: Parameters<typeof real.hashHex>) => {
      hashCalls.count++
      return real.hashHex(...args)
    },
  }
})

describe('the simple form: users', () => {
  it('answers an unknown user exactly as a wrong password (no enumeration by the answer)', async () => {
    const { app } = gate({ users: { alice: 'wonderland' }, brakes: false })
    const unknown = await clientOf(app, 'mallory', 'wonderland').fetch('/private/x')
    const wrong = await clientOf(app, 'alice', 'nope').fetch('/private/x')
    expect(unknown.status).toBe(401)
    expect(wrong.status).toBe(401)
    expect(await unknown.text()).toBe(await wrong.text())
    expect(shape(unknown.headers.get('www-authenticate'))).toBe(
      shape(wrong.headers.get('www-authenticate'))
    )
    expect([...unknown.headers.keys()]).toEqual([...wrong.headers.keys()])
  })

  it('hashes an unknown name as much as a wrong password (no enumeration by time)', async () => {
    const authority = localAuthority({ alice: 'wonderland', bob: { password: 'builder' } })
    const cost = async (username: string, userhash = false) => {
      hashCalls.count = 0
      const answer = await authority.verify({
        version: 1,
        serverId: 'gate',
        method: 'GET',
        directives: {
          username,
          userhash,
          realm: REALM,
          nonce: 'n',
          uri: '/x',
          response: '0'.repeat(64),
          algorithm: 'SHA-256',
          qop: 'auth',
          nc: '00000001',
          cnonce: 'c',
        },
      })
      expect(answer).toEqual({ result: 'denied', reason: 'logon_denied' })
      return hashCalls.count
    }
    // H(A2) of a method and URI is memoised (nothing secret): the first call warms it.
    await cost('alice')
    const wrongPassword = await cost('alice')
    expect(wrongPassword).toBeGreaterThan(0)
    expect(await cost('bob')).toBe(wrongPassword)
    expect(await cost('mallory')).toBe(wrongPassword)
    expect(await cost('constructor')).toBe(wrongPassword)
    // Hashed names: the table of names is built on first use, then an unknown one costs the same.
    await cost('0'.repeat(64), true)
    expect(await cost('1'.repeat(64), true)).toBe(wrongPassword)
  })

  it('gives no login to names inherited from Object.prototype, and pollutes nothing', async () => {
    // A record parsed from JSON holds `__proto__` as an own key: that user, and only with its
    // password, gets in.
    const users = JSON.parse('{"alice":"wonderland","__proto__":"proto-pass"}')
    const { app, seen } = gate({ users, brakes: false })
    for (const name of [
      'constructor',
      'toString',
      'hasOwnProperty',
      'valueOf',
      '__defineGetter__',
    ]) {
      for (const password of ['', 'wonderland', '[object Object]', 'undefined']) {
        expect((await clientOf(app, name, password).fetch('/private/p')).status).toBe(401)
      }
    }
    expect((await clientOf(app, '__proto__', 'wonderland').fetch('/private/p')).status).toBe(401)
    expect((await clientOf(app, '__proto__', 'proto-pass').fetch('/private/p')).status).toBe(200)
    expect(seen).toEqual(['__proto__'])
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.getPrototypeOf({})).toBe(Object.prototype)
  })

  it('compares names exactly: an NFD spelling is not the NFC user (and not a 5xx)', async () => {
    const nfc = 'Jos\u00e9'
    const nfd = 'Jose\u0301'
    const { app } = gate({ users: { [nfc]: 'pässwörd' }, brakes: false })
    expect((await clientOf(app, nfc, 'pässwörd').fetch('/private/n')).status).toBe(200)
    expect((await clientOf(app, nfd, 'pässwörd').fetch('/private/n')).status).toBe(401)
    expect((await clientOf(app, nfc, 'pa\u0308sswo\u0308rd').fetch('/private/n')).status).toBe(401)
  })

  it('refuses an empty password, or a user that is not one, when built', () => {
    const build = (users: unknown) => () =>
      digestAuth({ realm: REALM, users: users as Record<string, string> })
    expect(build({ alice: '' })).toThrow(/alice.*empty password/)
    expect(build({ alice: { password: '' } })).toThrow(/alice.*empty password/)
    expect(build({ alice: null })).toThrow(/alice/)
    expect(build({ alice: 42 })).toThrow(/alice/)
    expect(build({ alice: {} })).toThrow(/alice/)
    expect(build({ alice: { ha1: 'zz' } })).toThrow(/alice.*ha1/)
    expect(build({ alice: { ha1: 'a'.repeat(32), hash: 'SHA-1' } })).toThrow(/alice.*hash/)
    expect(build({ alice: { password: 'x', groups: 'admin' } })).toThrow(/alice.*groups/)
    // And the error names the user, never the password.
    expect(build({ alice: { password: 'hunter2', groups: 'admin' } })).not.toThrow(/hunter2/)
  })

  it('denies a lookup that answers an empty password or no user (never a free login, never a 5xx)', async () => {
    const { app } = gate({ users: () => '', brakes: false })
    expect((await clientOf(app, 'alice', '').fetch('/private/e')).status).toBe(401)
    const { app: b } = gate({ users: () => ({ password: '' }), brakes: false })
    expect((await clientOf(b, 'alice', '').fetch('/private/e')).status).toBe(401)
    // The usual lookup over a plain object answers Object.prototype's members: no such user.
    const passwords: Record<string, string> = { alice: 'wonderland' }
    const { app: c } = gate({ users: (name) => passwords[name], brakes: false })
    for (const name of ['constructor', 'toString', '__proto__']) {
      expect((await clientOf(c, name, '').fetch('/private/e')).status).toBe(401)
    }
    expect((await clientOf(c, 'alice', 'wonderland').fetch('/private/e')).status).toBe(200)
  })

  it('answers 503 with Retry-After when the lookup throws, and logs no secret', async () => {
    const lines: string[] = []
    const a = new Hono()
    a.use(
      '/private/*',
      digestAuth({
        realm: REALM,
        users: async () => {
          throw new Error('db down: password=hunter2')
        },
        onDecision: (entry) => lines.push(JSON.stringify(entry)),
      })
    )
    a.get('/private/*', (c) => c.text('in'))
    const res = await clientOf(a, 'alice', 'hunter2').fetch('/private/t')
    expect(res.status).toBe(503)
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(lines.join('\n')).not.toMatch(/hunter2/)
  })

  it('keeps sessions working through a lookup outage at revalidation (the grace), then 503', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(new Date('2026-12-01T12:00:00Z'))
    let down = false
    const { app, seen } = gate({
      users: async (name) => {
        if (down) throw new Error('db down')
        return name === 'alice' ? 'wonderland' : undefined
      },
      revalidateAfter: 60,
      revalidateGrace: 120,
      nonceLifetime: 600,
      brakes: false,
    })
    const alice = clientOf(app, 'alice', 'wonderland')
    expect((await alice.fetch('/private/1')).status).toBe(200)
    down = true
    vi.setSystemTime(new Date('2026-12-01T12:01:30Z'))
    expect((await alice.fetch('/private/2')).status).toBe(200)
    vi.setSystemTime(new Date('2026-12-01T12:03:30Z'))
    const after = await alice.fetch('/private/3')
    expect(after.status).toBe(503)
    expect(Number(after.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(seen).toEqual(['alice', 'alice'])
  })

  it('accepts a captured first login once, even when two copies verify at the same time', async () => {
    // A slow async lookup holds both copies inside verification together.
    let release: () => void = () => {}
    const gateOpen = new Promise<void>((r) => {
      release = r
    })
    const { app, seen } = gate({
      users: async (name) => {
        await gateOpen
        return name === 'alice' ? 'wonderland' : undefined
      },
      brakes: false,
    })
    const challenge = (await app.request('https://app.test/private/r')).headers
    const alice = createDigestClient({
      username: 'alice',
      password: 'wonderland',
      // Only learns the challenge: nothing reaches the gate but the two copies below.
      fetch: async () => new Response(null, { status: 401, headers: challenge }),
    })
    await alice.fetch('https://app.test/private/r')
    const header = (await alice.authorizationFor('GET', 'https://app.test/private/r')) as string
    const both = Promise.all([raw(app, '/private/r', header), raw(app, '/private/r', header)])
    await new Promise((r) => setTimeout(r, 10))
    release()
    const statuses = (await both).map((r) => r.status).sort()
    expect(statuses).toEqual([200, 401])
    expect(seen).toEqual(['alice'])
  })

  it('accepts a captured request from the cached key once, however many copies race', async () => {
    const { app, seen } = gate({ users: { alice: 'wonderland' }, brakes: false })
    const alice = createDigestClient({
      username: 'alice',
      password: 'wonderland',
      fetch: async (input, init) => app.request(new Request(input as RequestInfo, init)),
    })
    expect((await alice.fetch('https://app.test/private/1')).status).toBe(200)
    // A request from the cached key, captured before it reached the gate, sent 8 times at once.
    const h = (await alice.authorizationFor('GET', 'https://app.test/private/2')) as string
    const race = await Promise.all(Array.from({ length: 8 }, () => raw(app, '/private/2', h)))
    expect(race.map((r) => r.status).sort()).toEqual([200, 401, 401, 401, 401, 401, 401, 401])
    // Once accepted, 8 more copies: all refused.
    const again = await Promise.all(Array.from({ length: 8 }, () => raw(app, '/private/2', h)))
    expect(again.every((r) => r.status === 401)).toBe(true)
    expect(seen).toEqual(['alice', 'alice'])
  })
})

describe('the memory stores', () => {
  it('keeps no context for strangers: a flood of wrong logins leaves room for the user', async () => {
    const { app } = gate({
      users: { alice: 'wonderland' },
      contexts: memoryContexts({ maxContexts: 1 }),
      brakes: false,
    })
    for (let i = 0; i < 40; i++) {
      const who = i % 2 === 0 ? `stranger${i}` : 'alice'
      expect(
        (await clientOf(app, who, `guess${i}`, `203.0.113.${i}`).fetch('/private/f')).status
      ).toBe(401)
    }
    expect((await clientOf(app, 'alice', 'wonderland').fetch('/private/f')).status).toBe(200)
  })

  it('never accepts a captured request again once its context has made room', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(new Date('2026-12-01T12:00:00Z'))
    const { app, seen } = gate({
      users: { alice: 'wonderland', bob: 'builder' },
      contexts: memoryContexts({ maxContexts: 1 }),
      idleTimeout: 10,
      nonceLifetime: 60,
      brakes: false,
    })
    const alice = clientOf(app, 'alice', 'wonderland')
    expect((await alice.fetch('/private/a')).status).toBe(200)
    const captured = alice.sent.at(-1) as string
    // Idle, but its nonce still live: the context still guards it, so it is not dropped.
    vi.setSystemTime(new Date('2026-12-01T12:00:30Z'))
    const early = await clientOf(app, 'bob', 'builder').fetch('/private/b')
    expect(early.status).toBe(503)
    expect(Number(early.headers.get('retry-after'))).toBeGreaterThan(0)
    expect((await raw(app, '/private/a', captured)).status).toBe(401)
    // Once the nonce has expired (lifetime and grace) the context goes, and the captured request is stale.
    vi.setSystemTime(new Date('2026-12-01T12:04:00Z'))
    expect((await clientOf(app, 'bob', 'builder').fetch('/private/b')).status).toBe(200)
    // Never accepted: its expired nonce makes it stale at best (here the one room is bob's: 503).
    const replay = await raw(app, '/private/a', captured)
    expect([401, 503]).toContain(replay.status)
    expect(seen).toEqual(['alice', 'bob'])
  })

  it('with maxContextsPerUser, one password cannot fill the store against the others', async () => {
    const { app } = gate({
      users: { alice: 'wonderland', bob: 'builder' },
      contexts: memoryContexts({ maxContexts: 4, maxContextsPerUser: 2 }),
      brakes: false,
    })
    // Each client is a new login (no opaque yet): a new context each.
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) {
      statuses.push((await clientOf(app, 'alice', 'wonderland').fetch('/private/a')).status)
    }
    expect(statuses).toEqual([200, 200, 503, 503])
    expect((await clientOf(app, 'bob', 'builder').fetch('/private/b')).status).toBe(200)
    expect(() => memoryContexts({ maxContextsPerUser: 0 })).toThrow(/maxContextsPerUser/)
    expect(() => memoryContexts({ maxContexts: Number.NaN })).toThrow(/maxContexts/)
  })

  it('memoryBrakes stays within maxObjects under a flood of new buckets and names', async () => {
    const brakes = memoryBrakes({ maxObjects: 100 })
    const policy = (await import('../../src/entries/index.ts')).DEFAULT_BRAKE_POLICY
    const now = 1_750_000_000
    for (let i = 0; i < 2000; i++) {
      await brakes.admit(
        { bucket: `10.0.${i >> 8}.${i & 255}`, realm: 'r', user: `u${i}`, now },
        policy
      )
      await brakes.recordFailure(
        { bucket: `10.0.${i >> 8}.${i & 255}`, realm: 'r', user: `u${i}`, now },
        policy
      )
      expect(brakes.size).toBeLessThanOrEqual(100)
    }
  })
})

describe('options: refused when built, not at the first request', () => {
  const base = { users: { alice: 'wonderland' } }
  const build = (o: Record<string, unknown>) => () =>
    digestAuth({ realm: REALM, ...base, ...o } as DigestAuthOptions)

  it('refuses nonce keys that could not work or are short', () => {
    expect(build({ nonceKeys: { current: { id: 1, secret: '' } } })).toThrow(/nonceKeys/)
    expect(build({ nonceKeys: { current: { id: 1, secret: 'short' } } })).toThrow(/16/)
    expect(build({ nonceKeys: { current: { id: 256, secret: 'x'.repeat(32) } } })).toThrow(/id/)
    expect(
      build({
        nonceKeys: {
          current: { id: 1, secret: 'x'.repeat(32) },
          previous: { id: 2, secret: 'short' },
        },
      })
    ).toThrow(/previous/)
    expect(build({ nonceKeys: { current: { id: 1, secret: 'x'.repeat(32) } } })).not.toThrow()
  })

  it('refuses a realm that cannot be sent in a header; quotes and commas are quoted', async () => {
    expect(build({ realm: 'a\r\nSet-Cookie: x=1' })).toThrow(/realm/)
    expect(build({ realm: 'a\nb' })).toThrow(/realm/)
    expect(build({ realm: 'a\u0000b' })).toThrow(/realm/)
    expect(build({ realm: '日本' })).toThrow(/realm/)
    const realm = 'x", nonce="evil", realm="y'
    const { app } = gate({ users: { alice: 'wonderland' }, realm, brakes: false })
    const res = await app.request('https://app.test/private/q')
    expect(res.headers.get('www-authenticate')).toContain(
      'realm="x\\", nonce=\\"evil\\", realm=\\"y"'
    )
    const alice = clientOf(app, 'alice', 'wonderland')
    expect((await alice.fetch('/private/q')).status).toBe(200)
    // A Latin-1 realm is header text: it works end to end.
    const zurich = gate({ users: { alice: 'wonderland' }, realm: 'Zürich', brakes: false })
    expect((await clientOf(zurich.app, 'alice', 'wonderland').fetch('/private/z')).status).toBe(200)
  })

  it('refuses unknown algorithms and qop values, and absurd numbers', () => {
    expect(build({ algorithms: ['SHA-1'] })).toThrow(/algorithm/)
    expect(build({ algorithms: [] })).toThrow(/algorithm/)
    expect(build({ qop: ['bogus'] })).toThrow(/qop/)
    expect(build({ qop: ['auth'] })).not.toThrow()
    expect(build({ qop: [] })).not.toThrow()
    expect(build({ qop: [], algorithms: ['SHA-256-sess', 'MD5'] })).toThrow(/-sess/)
    expect(build({ replay: 'sometimes' })).toThrow(/replay/)
    expect(build({ serverId: '' })).toThrow(/serverId/)
    expect(build({ serverId: 'x'.repeat(65) })).toThrow(/serverId/)
    for (const name of ['nonceLifetime', 'idleTimeout', 'maxLifetime', 'revalidateAfter']) {
      expect(build({ [name]: Number.POSITIVE_INFINITY })).toThrow(name)
      expect(build({ [name]: -1 })).toThrow(name)
      expect(build({ [name]: 1.5 })).toThrow(name)
    }
    expect(build({ nonceLifetime: 2 ** 33 })).toThrow(/nonceLifetime/)
    expect(build({ windowSize: 2 ** 30 })).toThrow(/windowSize/)
    expect(build({ maxAuthIntBody: Number.NaN })).toThrow(/maxAuthIntBody/)
  })
})

describe('the Digest client', () => {
  it('does not answer a challenge that came from another origin after a redirect', async () => {
    const calls: Array<{ url: string; authorization: string | null }> = []
    const client = createDigestClient({
      username: 'alice',
      password: 'wonderland',
      fetch: async (input, init) => {
        const req = new Request(input as RequestInfo, init)
        calls.push({ url: req.url, authorization: req.headers.get('authorization') })
        // As a following fetch reports it: the 401 is evil.test's, reached by a redirect.
        const res = new Response('no', {
          status: 401,
          headers: { 'www-authenticate': `Digest realm="${REALM}", qop="auth", nonce="evil"` },
        })
        Object.defineProperty(res, 'redirected', { value: true })
        Object.defineProperty(res, 'url', { value: 'https://evil.test/x' })
        return res
      },
    })
    const res = await client.fetch('https://app.test/private/x')
    expect(res.status).toBe(401)
    expect(calls).toEqual([{ url: 'https://app.test/private/x', authorization: null }])
    // Nothing was learnt for app.test from evil.test's challenge.
    expect(await client.authorizationFor('GET', 'https://app.test/private/y')).toBeUndefined()
  })

  it('under Node, sends no Authorization to another origin a redirect leads to', async () => {
    const seenByEvil: Array<string | undefined> = []
    const evil = await listen((req, res) => {
      seenByEvil.push(req.headers.authorization)
      res.writeHead(401, { 'www-authenticate': `Digest realm="${REALM}", qop="auth", nonce="e"` })
      res.end()
    })
    const { app } = gate({ users: { alice: 'wonderland' }, brakes: false })
    app.get('/go', (c) => c.redirect(`${evil.url}/steal`, 302))
    const home = await listen(async (req, res) => {
      const r = await app.request(`http://home.test${req.url}`, {
        headers: req.headers.authorization ? { authorization: req.headers.authorization } : {},
      })
      res.writeHead(r.status, Object.fromEntries(r.headers))
      res.end(await r.text())
    })
    try {
      const alice = createDigestClient({ username: 'alice', password: 'wonderland' })
      expect((await alice.fetch(`${home.url}/private/1`)).status).toBe(200)
      // Preemptive credentials for home go out; the redirect to evil must drop them.
      const res = await alice.fetch(`${home.url}/go`)
      expect(res.status).toBe(401)
      expect(seenByEvil.length).toBeGreaterThan(0)
      expect(seenByEvil.every((h) => h === undefined)).toBe(true)
    } finally {
      home.server.close()
      evil.server.close()
    }
  })

  it('sends no cached credentials to the same host over plain http, nor another port', async () => {
    const { app } = gate({ users: { alice: 'wonderland' }, brakes: false })
    const sent: Array<[string, boolean]> = []
    const alice = createDigestClient({
      username: 'alice',
      password: 'wonderland',
      fetch: async (input, init) => {
        const req = new Request(input as RequestInfo, init)
        sent.push([req.url, req.headers.has('authorization')])
        return app.request(req)
      },
    })
    expect((await alice.fetch('https://app.test/private/1')).status).toBe(200)
    sent.length = 0
    await alice.fetch('http://app.test/private/2')
    await alice.fetch('https://app.test:8443/private/3')
    // Each starts without credentials: the first request to each origin carries none.
    expect(sent.filter(([, auth]) => !auth).map(([u]) => u)).toEqual([
      'http://app.test/private/2',
      'https://app.test:8443/private/3',
    ])
    expect(sent[0]).toEqual(['http://app.test/private/2', false])
  })

  it('a wrong rspauth does not move the client to the nextnonce that came with it', async () => {
    const nonces: string[] = []
    let first = true
    const client = createDigestClient({
      username: 'alice',
      password: 'wonderland',
      fetch: async (input, init) => {
        const h = new Request(input as RequestInfo, init).headers.get('authorization')
        if (!h) {
          return new Response(null, {
            status: 401,
            headers: { 'www-authenticate': `Digest realm="${REALM}", qop="auth", nonce="n1"` },
          })
        }
        nonces.push(parseAuthorization(h).nonce)
        const info = first
          ? `rspauth="${'0'.repeat(32)}", nextnonce="attacker", qop=auth`
          : 'qop=auth'
        first = false
        return new Response('ok', { headers: { 'authentication-info': info } })
      },
    })
    await expect(client.fetch('https://app.test/a')).rejects.toBeInstanceOf(RspauthMismatchError)
    await client.fetch('https://app.test/b')
    expect(nonces).toEqual(['n1', 'n1'])
  })

  it('accepts a right rspauth and its nextnonce; an absent rspauth is not verified', async () => {
    const nonces: string[] = []
    let n = 0
    const client = createDigestClient({
      username: 'alice',
      password: 'wonderland',
      fetch: async (input, init) => {
        const h = new Request(input as RequestInfo, init).headers.get('authorization')
        if (!h) {
          return new Response(null, {
            status: 401,
            headers: { 'www-authenticate': `Digest realm="${REALM}", qop="auth", nonce="n1"` },
          })
        }
        const c = parseAuthorization(h)
        nonces.push(c.nonce)
        n++
        if (n > 1) return new Response('ok')
        const { baseHA1 } = await import('../../src/digest/algorithms.ts')
        const rspauth = computeRspauth({
          algorithm: 'MD5',
          ha1: baseHA1('MD5', 'alice', REALM, 'wonderland'),
          nonce: c.nonce,
          nc: c.ncRaw,
          cnonce: c.cnonce,
          qop: 'auth',
          uri: c.uri,
        })
        return new Response('ok', {
          headers: { 'authentication-info': `rspauth="${rspauth}", nextnonce="n2"` },
        })
      },
    })
    expect((await client.fetch('https://app.test/a')).status).toBe(200)
    expect((await client.fetch('https://app.test/b')).status).toBe(200)
    expect(nonces).toEqual(['n1', 'n2'])
  })

  it('never puts the password in what it throws', async () => {
    const password = 'correct horse battery staple'
    const wrongRspauth = createDigestClient({
      username: 'alice',
      password,
      fetch: async (input, init) =>
        new Request(input as RequestInfo, init).headers.has('authorization')
          ? new Response('ok', {
              headers: { 'authentication-info': `rspauth="${'1'.repeat(32)}"` },
            })
          : new Response(null, {
              status: 401,
              headers: { 'www-authenticate': `Digest realm="r", qop="auth", nonce="n"` },
            }),
    })
    for (const client of [wrongRspauth]) {
      const err = await client.fetch('https://app.test/x').then(
        () => undefined,
        (e: unknown) => e as Error
      )
      expect(err).toBeInstanceOf(Error)
      const text = `${String(err)} ${err?.stack} ${JSON.stringify(err)} ${String((err as { cause?: unknown }).cause)}`
      expect(text).not.toContain(password)
    }
  })

  it('sends at most three requests per call, whatever 401s (stale or not) a server answers', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ stale: fc.boolean(), realm: fc.constantFrom('a', 'b') }), {
          minLength: 8,
          maxLength: 8,
        }),
        fc.boolean(),
        async (answers, warm) => {
          let calls = 0
          let next = 0
          const client = createDigestClient({
            username: 'alice',
            password: 'wonderland',
            fetch: async () => {
              calls++
              const a = answers[next++ % answers.length] as { stale: boolean; realm: string }
              return new Response(null, {
                status: 401,
                headers: {
                  'www-authenticate': `Digest realm="${a.realm}", qop="auth", nonce="n${next}"${a.stale ? ', stale=true' : ''}`,
                },
              })
            },
          })
          // Warm: a space is known, so the first request carries cached credentials.
          if (warm) await client.fetch('https://app.test/warm')
          calls = 0
          expect((await client.fetch('https://app.test/x')).status).toBe(401)
          expect(calls).toBeLessThanOrEqual(3)
        }
      ),
      { numRuns: 200 }
    )
  })

  it('skips a challenge with an algorithm it does not know, whatever its place', async () => {
    const used: string[] = []
    const client = createDigestClient({
      username: 'alice',
      password: 'wonderland',
      fetch: async (input, init) => {
        const h = new Request(input as RequestInfo, init).headers.get('authorization')
        if (h) {
          used.push(parseAuthorization(h).algorithm ?? 'none')
          return new Response('ok')
        }
        const res = new Response(null, { status: 401 })
        res.headers.append(
          'www-authenticate',
          'Digest realm="r", qop="auth", algorithm=SHA-1024, nonce="n"'
        )
        res.headers.append(
          'www-authenticate',
          'Digest realm="r", qop="auth", algorithm=SHA-256, nonce="n"'
        )
        return res
      },
    })
    expect((await client.fetch('https://app.test/x')).status).toBe(200)
    expect(used).toEqual(['SHA-256'])
  })
})

async function listen(
  handler: (
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse
  ) => void
): Promise<{ server: Server; url: string }> {
  const server = createServer(handler)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return { server, url: `http://127.0.0.1:${port}` }
}
