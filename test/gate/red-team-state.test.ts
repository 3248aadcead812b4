/**
 * The state attacked by someone who read the code: replays spread over two isolates' batches, a
 * batch item that throws between good ones, revocation racing a batch, the isolate cache of replay
 * `off` (another bucket's guess, groups changed at revalidation), identities of interleaved users,
 * and strangers' forged token combinations. Each test asserts on what the origin received and,
 * where it matters, on the context object's storage. Real Durable Objects.
 */
import { evictDurableObject, listDurableObjectIds, runInDurableObject } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { baseHA1, computeResponse, userhash } from '../../src/digest/algorithms.ts'
import { formatAuthorization } from '../../src/digest/header.ts'
import { readNonceFields } from '../../src/digest/tokens.ts'
import { DEFAULT_BRAKE_POLICY } from '../../src/gate/brake-policy.ts'
import type { ContextPolicy, ContextRequest } from '../../src/gate/context-types.ts'
import { CACHE_SECONDS } from '../../src/gate/isolate-cache.ts'
import { memoryContexts } from '../../src/gate/memory-contexts.ts'
import type { SecurityContext, VerifyItem } from '../../src/gate/security-context.ts'
import { batching } from '../../src/gate/verify-batches.ts'
import type { buildGate } from '../../src/index.ts'
import {
  authorization,
  captureDecisions,
  challengeOf,
  client,
  type FakeAuthority,
  type FakeOrigin,
  GATE,
  installPeers,
  REALM,
  settlingGate,
} from './fakes.ts'
import { fakeClock, holdTimers, quietSpell } from './support/clock.ts'
import { addressesIn, addUser } from './support/fresh-names.ts'

let authority: FakeAuthority
let origin: FakeOrigin

beforeEach(() => {
  // As verify-batches.test.ts: this runner turns cross-request wake-ups off, so batching is
  // turned on by hand for requests that share the test's context.
  batching.enabled = true
  ;({ authority, origin } = installPeers())
  vi.useFakeTimers({ toFake: ['Date'] })
})
afterEach(() => {
  batching.enabled = undefined
  vi.useRealTimers()
  vi.restoreAllMocks()
})

const newIp = addressesIn('203.0.113')

type Gate = ReturnType<typeof settlingGate>

/** One isolate of the gate: its own batcher, isolate cache and known handles. */
function isolate(vars: Record<string, string> = {}): Gate {
  return settlingGate({ ...env, ...vars } as Parameters<typeof buildGate>[0])
}

const nonceOf = (header: string) => /nonce="([^"]+)"/.exec(header)?.[1] ?? ''
const opaqueOf = (header: string) => /opaque="([^"]+)"/.exec(header)?.[1] ?? ''
const handleOf = (header: string) => readNonceFields(nonceOf(header))?.handle ?? ''

/** A logged-in session on `g`. */
async function loggedIn(g: Gate, groups: string[] = [], ip = newIp()) {
  const user = addUser(authority, 'right', 'red')
  const u = authority.users.get(user)
  if (u) u.groups = groups
  const headers = { 'cf-connecting-ip': ip }
  const c = client(g.fetch, user, 'right')
  expect((await c.fetch('/private/login', { headers })).status).toBe(200)
  await g.settled()
  const sent = c.sent.find((s) => s.status === 200)?.authorization ?? ''
  return {
    c,
    user,
    ip,
    headers,
    nonce: nonceOf(sent),
    opaque: opaqueOf(sent),
    handle: handleOf(sent),
  }
}

function send(g: Gate, path: string, header: string, ip: string): Promise<Response> {
  return g.fetch(
    new Request(`${GATE}${path}`, { headers: { authorization: header, 'cf-connecting-ip': ip } })
  )
}

const atOrigin = (path: string) => origin.requests.filter((r) => r.path === path)

/** The nc state storage holds for a nonce of a context (its reservation mark), if any. */
function storedNonce(handle: string, nonce: string): Promise<number | undefined> {
  return runInDurableObject(env.CONTEXTS.getByName(handle), (_: SecurityContext, state) => {
    const row = state.storage.sql
      .exec<{ reserved: number }>('SELECT reserved FROM nonces WHERE nonce = ?', nonce)
      .toArray()[0]
    return row?.reserved
  })
}

function failuresOf(handle: string, bucket: string): Promise<number> {
  return runInDurableObject(env.CONTEXTS.getByName(handle), (_: SecurityContext, state) => {
    const row = state.storage.sql
      .exec<{ count: number }>('SELECT count FROM failures WHERE bucket = ?', bucket)
      .toArray()[0]
    return row?.count ?? 0
  })
}

/** Which of these handles have a SecurityContext object now. */
async function objectsOf(handles: string[]): Promise<string[]> {
  const ids = new Set((await listDurableObjectIds(env.CONTEXTS)).map((id) => id.toString()))
  return handles.filter((h) => ids.has(env.CONTEXTS.idFromName(h).toString()))
}

/** The claims of a signed assertion (a JWS), unverified: only what the origin was told. */
function claimsOf(token: string | undefined): { sub?: string; groups?: string[] } {
  const payload = token?.split('.')[1] ?? ''
  const b64 = payload.replace(/-/g, '+').replace(/_/g, '/')
  return JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)))
}

describe('replays against the batches', () => {
  it('one captured request sent 10 times through each of two isolates at once: accepted once', async () => {
    const a = isolate()
    const b = isolate()
    const s = await loggedIn(a)
    const captured = (await s.c.raw.authorizationFor('GET', `${GATE}/private/two-isolates`)) ?? ''
    // Each isolate's first request holds its lane, so the copies behind it go out as batches.
    const leadA = (await s.c.raw.authorizationFor('GET', `${GATE}/private/lead-a`)) ?? ''
    const leadB = (await s.c.raw.authorizationFor('GET', `${GATE}/private/lead-b`)) ?? ''
    const res = await Promise.all([
      send(a, '/private/lead-a', leadA, s.ip),
      send(b, '/private/lead-b', leadB, s.ip),
      ...Array.from({ length: 20 }, (_, i) =>
        send(i % 2 ? a : b, '/private/two-isolates', captured, i % 3 ? s.ip : newIp())
      ),
    ])
    expect(res[0]?.status).toBe(200)
    expect(res[1]?.status).toBe(200)
    const copies = res.slice(2).map((r) => r.status)
    expect(copies.filter((st) => st === 200)).toHaveLength(1)
    expect(copies.filter((st) => st !== 200).every((st) => st === 401)).toBe(true)
    expect(atOrigin('/private/two-isolates')).toHaveLength(1)
  })

  it('an item that throws between good ones: its neighbours are judged once, their ncs recorded once', async () => {
    const g = isolate()
    const s = await loggedIn(g)
    const policy: ContextPolicy = {
      replay: 'window',
      windowSize: 128,
      nonceLifetime: 300,
      idleTimeout: 1800,
      maxLifetime: 43_200,
      revalidateAfter: 600,
      freeMismatches: 1,
      brakes: true,
    }
    const issuedAt = readNonceFields(s.nonce)?.issuedAt ?? 0
    const ha1 = await baseHA1('SHA-256', s.user, REALM, 'right')
    const itemFor = async (nc: number): Promise<ContextRequest> => {
      const ncRaw = nc.toString(16).padStart(8, '0')
      const uri = `/private/item-${nc}`
      const response = await computeResponse({
        algorithm: 'SHA-256',
        ha1,
        nonce: s.nonce,
        nc: ncRaw,
        cnonce: 'c0ffee',
        qop: 'auth',
        method: 'GET',
        uri,
      })
      return {
        username: s.user,
        userhash: false,
        realm: REALM,
        algorithm: 'SHA-256',
        nonce: s.nonce,
        nonceIssuedAt: issuedAt,
        nonceExpired: false,
        uri,
        method: 'GET',
        response,
        qop: 'auth',
        nc,
        ncRaw,
        cnonce: 'c0ffee',
        now: Math.floor(Date.now() / 1000),
        bucket: s.ip,
      }
    }
    const text = JSON.stringify(policy)
    const [r40, r41, r42] = await Promise.all([itemFor(40), itemFor(41), itemFor(42)])
    const items: VerifyItem[] = [
      { req: r40 as ContextRequest, policy: text },
      // A policy that cannot be read: this item's verify throws.
      { req: r41 as ContextRequest, policy: '{"replay":' },
      { req: r42 as ContextRequest, policy: text },
      // The first item again, in the same call: a replay of it.
      { req: r40 as ContextRequest, policy: text },
    ]
    const stub = env.CONTEXTS.getByName(s.handle)
    const first = await stub.verifyMany(items)
    expect(first.map((r) => ('answer' in r ? r.answer.kind : 'error'))).toEqual([
      'verified',
      'error',
      'verified',
      'replay',
    ])
    // The thrown item recorded nothing: sent again with a readable policy it is fresh, once.
    const again = await stub.verifyMany([
      { req: r41 as ContextRequest, policy: text },
      { req: r40 as ContextRequest, policy: text },
      { req: r42 as ContextRequest, policy: text },
      { req: r41 as ContextRequest, policy: text },
    ])
    expect(again.map((r) => ('answer' in r ? r.answer.kind : 'error'))).toEqual([
      'verified',
      'replay',
      'replay',
      'replay',
    ])
    // Through the gate, none of them gets in again.
    const through = await Promise.all(
      [40, 41, 42].map(async (nc) =>
        send(
          g,
          `/private/item-${nc}`,
          await authorization({
            user: s.user,
            password: 'right',
            nonce: s.nonce,
            opaque: s.opaque,
            uri: `/private/item-${nc}`,
            nc,
            cnonce: 'c0ffee',
          }),
          s.ip
        )
      )
    )
    expect(through.map((r) => r.status)).toEqual([401, 401, 401])
    expect(origin.requests.filter((r) => r.path.startsWith('/private/item-'))).toEqual([])
  })
})

describe('replays racing a release', () => {
  it('one captured request through two isolates while its object releases itself: accepted once', async () => {
    // The release harness: a hand-moved clock, and the objects' flush timers held until a quiet
    // spell fires them inside the object.
    vi.useRealTimers()
    const clock = fakeClock()
    holdTimers()
    let released = 0
    for (const delay of [0, 1, 2, 4]) {
      const vars = { CONTEXT_RELEASE_AFTER: '2' }
      const a = isolate(vars)
      const b = isolate(vars)
      const s = await loggedIn(a)
      const captured = (await s.c.raw.authorizationFor('GET', `${GATE}/private/rel-${delay}`)) ?? ''
      const fresh: string[] = []
      for (let i = 0; i < 4; i++) {
        fresh.push(
          (await s.c.raw.authorizationFor('GET', `${GATE}/private/relf-${delay}-${i}`)) ?? ''
        )
      }
      const stub = env.CONTEXTS.getByName(s.handle)
      const raced = await Promise.all([
        scheduler.wait(delay * 2).then(() => quietSpell(clock, stub, 3)),
        ...Array.from({ length: 12 }, async (_, k) => {
          await scheduler.wait(delay * (k % 4))
          return send(k % 2 ? a : b, `/private/rel-${delay}`, captured, k % 3 ? s.ip : newIp())
        }),
        ...fresh.map(async (h, i) => {
          await scheduler.wait(delay * i)
          return send(i % 2 ? b : a, `/private/relf-${delay}-${i}`, h, s.ip)
        }),
      ])
      const responses = raced.filter((r) => r instanceof Response)
      const copies = responses.slice(0, 12).map((r) => r.status)
      expect(copies.filter((st) => st === 200)).toHaveLength(1)
      expect(copies.filter((st) => st !== 200).every((st) => st === 401)).toBe(true)
      expect(atOrigin(`/private/rel-${delay}`)).toHaveLength(1)
      expect(responses.slice(12).map((r) => r.status)).toEqual([200, 200, 200, 200])
      const gone = await runInDurableObject(stub, () => false).catch(
        (err: { durableObjectReset?: boolean }) => err.durableObjectReset === true
      )
      if (gone) released++
      // Afterwards, from either isolate, every copy is refused.
      for (const g of [a, b]) {
        expect((await send(g, `/private/rel-${delay}`, captured, newIp())).status).toBe(401)
      }
      expect(atOrigin(`/private/rel-${delay}`)).toHaveLength(1)
      vi.clearAllTimers()
    }
    expect(released).toBeGreaterThan(0)
  })
})

describe('revocation racing a batch', () => {
  it('requests racing a revoke are each answered once; every one sent after it is refused', async () => {
    const g = isolate()
    const s = await loggedIn(g)
    const headerFor = async (p: string) =>
      [p, (await s.c.raw.authorizationFor('GET', `${GATE}${p}`)) ?? ''] as const
    const racing = await Promise.all(
      Array.from({ length: 10 }, (_, i) => headerFor(`/private/race-${i}`))
    )
    const after = await Promise.all(
      Array.from({ length: 10 }, (_, i) => headerFor(`/private/after-${i}`))
    )
    const revoke = () =>
      g.fetch(
        new Request(`${GATE}/.digest-gate/admin/contexts/${s.handle}/revoke`, {
          method: 'POST',
          headers: { authorization: 'Bearer test-admin-token-0123456789abcdef0123' },
        })
      )
    const [revoked, ...raced] = await Promise.all([
      scheduler.wait(1).then(revoke),
      ...racing.map(([p, h]) => send(g, p, h, s.ip)),
    ])
    expect(revoked?.status).toBe(200)
    for (const [k, r] of raced.entries()) {
      const reached = atOrigin(`/private/race-${k}`).length
      expect([200, 401]).toContain(r.status)
      expect(reached).toBe(r.status === 200 ? 1 : 0)
    }
    const res = await Promise.all(after.map(([p, h]) => send(g, p, h, s.ip)))
    expect(res.map((r) => r.status)).toEqual(Array(10).fill(401))
    expect(origin.requests.filter((r) => r.path.startsWith('/private/after-'))).toEqual([])
  })
})

describe('revocation while a revalidation is at the authority', () => {
  for (const how of ['handle', 'user'] as const) {
    it(`revoked by ${how} meanwhile: the request it was verifying is refused, never forwarded`, async () => {
      const g = isolate({ REVALIDATE_AFTER: '60' })
      const s = await loggedIn(g)
      expect((await s.c.fetch('/private/rv-before', { headers: s.headers })).status).toBe(200)
      vi.setSystemTime(Date.now() + 61_000)
      let release = () => {}
      authority.hold = new Promise<void>((r) => {
        release = r
      })
      const calls = authority.calls
      // Sent as is: a client would answer the refusal with a new login, which is not this request.
      const held = (await s.c.raw.authorizationFor('GET', `${GATE}/private/rv-held`)) ?? ''
      const pending = send(g, '/private/rv-held', held, s.ip)
      // Verified by the cached key, nc recorded; now at the authority.
      for (let i = 0; i < 200 && authority.calls === calls; i++) await scheduler.wait(5)
      expect(authority.calls).toBe(calls + 1)
      const path =
        how === 'handle'
          ? `/.digest-gate/admin/contexts/${s.handle}/revoke`
          : `/.digest-gate/admin/users/${REALM}/${encodeURIComponent(s.user)}/revoke`
      const revoked = await g.fetch(
        new Request(`${GATE}${path}`, {
          method: 'POST',
          headers: { authorization: 'Bearer test-admin-token-0123456789abcdef0123' },
        })
      )
      expect(revoked.status).toBe(200)
      release()
      authority.hold = undefined
      const res = await pending
      expect(res.status).toBe(401)
      expect(atOrigin('/private/rv-held')).toEqual([])
    })
  }
})

describe('replay mode off: the isolate cache', () => {
  it("a guess from another bucket is never answered from the user's entry: the object counts it", async () => {
    const g = isolate({ REPLAY_MODE: 'off' })
    const s = await loggedIn(g)
    // Warm: the next requests from the user's bucket are verified in the isolate.
    expect((await s.c.fetch('/private/warm', { headers: s.headers })).status).toBe(200)
    const guesser = newIp()
    const guess = await authorization({
      user: s.user,
      password: 'wrong',
      nonce: s.nonce,
      opaque: s.opaque,
      uri: '/private/guess',
      nc: 7,
    })
    expect((await send(g, '/private/guess', guess, guesser)).status).toBe(401)
    expect(atOrigin('/private/guess')).toEqual([])
    expect(await failuresOf(s.handle, guesser)).toBe(1)
    // The user's bucket is not charged, and its session carries on.
    expect(await failuresOf(s.handle, s.ip)).toBe(0)
    expect((await s.c.fetch('/private/still', { headers: s.headers })).status).toBe(200)
  })

  it('after a revoke: other buckets refused at once, the warm bucket within CACHE_SECONDS, never later', async () => {
    const g = isolate({ REPLAY_MODE: 'off' })
    const s = await loggedIn(g)
    expect((await s.c.fetch('/private/rc-warm', { headers: s.headers })).status).toBe(200)
    const revoked = await g.fetch(
      new Request(`${GATE}/.digest-gate/admin/contexts/${s.handle}/revoke`, {
        method: 'POST',
        headers: { authorization: 'Bearer test-admin-token-0123456789abcdef0123' },
      })
    )
    expect(revoked.status).toBe(200)
    const header = async (p: string) => (await s.c.raw.authorizationFor('GET', `${GATE}${p}`)) ?? ''
    // Replay mode off accepts a copy from anywhere, but another bucket has no cached entry.
    expect(
      (await send(g, '/private/rc-other', await header('/private/rc-other'), newIp())).status
    ).toBe(401)
    // The documented bound: the bucket that filled the entry may be served from it for its life.
    const within = await send(g, '/private/rc-within', await header('/private/rc-within'), s.ip)
    expect([200, 401]).toContain(within.status)
    vi.setSystemTime(Date.now() + (CACHE_SECONDS + 1) * 1000)
    expect(
      (await send(g, '/private/rc-after', await header('/private/rc-after'), s.ip)).status
    ).toBe(401)
    expect(atOrigin('/private/rc-other')).toEqual([])
    expect(atOrigin('/private/rc-after')).toEqual([])
  })

  it('groups changed at the authority reach the origin at revalidation, never stale afterwards', async () => {
    const g = isolate({ REPLAY_MODE: 'off', REVALIDATE_AFTER: '60' })
    const s = await loggedIn(g, ['old-group'])
    expect((await s.c.fetch('/private/g-1', { headers: s.headers })).status).toBe(200)
    expect((await s.c.fetch('/private/g-2', { headers: s.headers })).status).toBe(200)
    const u = authority.users.get(s.user)
    if (u) u.groups = ['new-group']
    vi.setSystemTime(Date.now() + 61_000)
    for (const p of ['/private/g-3', '/private/g-4', '/private/g-5']) {
      expect((await s.c.fetch(p, { headers: s.headers })).status).toBe(200)
    }
    for (const p of ['/private/g-1', '/private/g-2']) {
      const [r] = atOrigin(p)
      expect(r?.headers['x-auth-groups']).toBe('old-group')
    }
    // Revalidated on g-3; g-4 from the object, g-5 from the isolate cache: all the new groups.
    for (const p of ['/private/g-3', '/private/g-4', '/private/g-5']) {
      const [r] = atOrigin(p)
      expect(r?.headers['x-auth-groups']).toBe('new-group')
      expect(claimsOf(r?.headers['x-auth-assertion']).groups).toEqual(['new-group'])
    }
  })
})

describe('identities', () => {
  it('two users interleaved in the same second: each request carries its own user, groups and assertion', async () => {
    const g = isolate()
    const one = await loggedIn(g, ['g-one'])
    const two = await loggedIn(g, ['g-two'])
    const res = await Promise.all(
      Array.from({ length: 16 }, (_, i) => {
        const s = i % 2 ? one : two
        return s.c.fetch(`/private/who-${i % 2 ? 'one' : 'two'}-${i}`, { headers: s.headers })
      })
    )
    expect(res.map((r) => r.status)).toEqual(Array(16).fill(200))
    for (const r of origin.requests.filter((q) => q.path.startsWith('/private/who-'))) {
      const s = r.path.startsWith('/private/who-one-') ? one : two
      const groups = s === one ? ['g-one'] : ['g-two']
      expect(r.headers['x-auth-user']).toBe(s.user)
      expect(r.headers['x-auth-groups']).toBe(groups.join(','))
      const claims = claimsOf(r.headers['x-auth-assertion'])
      expect(claims.sub).toBe(s.user)
      expect(claims.groups).toEqual(groups)
    }
  })
})

describe('a handle established again', () => {
  it('after it ran out, with groups changed at the authority: the origin never sees the old ones again', async () => {
    const g = isolate({ IDLE_TIMEOUT: '600' })
    const s = await loggedIn(g, ['before'])
    expect((await s.c.fetch('/private/re-1', { headers: s.headers })).status).toBe(200)
    const u = authority.users.get(s.user)
    if (u) u.groups = ['after']
    vi.setSystemTime(Date.now() + 601_000)
    for (const p of ['/private/re-2', '/private/re-3', '/private/re-4']) {
      expect((await s.c.fetch(p, { headers: s.headers })).status).toBe(200)
    }
    // The same handle throughout: its context ended and was established again for the same user.
    const handles = new Set(
      s.c.sent.filter((x) => x.status === 200).map((x) => handleOf(x.authorization ?? ''))
    )
    expect(handles).toEqual(new Set([s.handle]))
    expect(atOrigin('/private/re-1')[0]?.headers['x-auth-groups']).toBe('before')
    for (const p of ['/private/re-2', '/private/re-3', '/private/re-4']) {
      const [r] = atOrigin(p)
      expect(r?.headers['x-auth-groups']).toBe('after')
      expect(claimsOf(r?.headers['x-auth-assertion']).groups).toEqual(['after'])
    }
  })
})

describe('strangers: forged token combinations', () => {
  it('a nonce of another serverId (same key): refused, no authority call, no object', async () => {
    const other = isolate({ SERVER_ID: 'gate-other' })
    const g = isolate()
    const user = addUser(authority, 'right', 'red')
    const bare = await other.fetch(new Request(`${GATE}/private/x`))
    const { nonce, opaque } = challengeOf(bare)
    const header = await authorization({
      user,
      password: 'right',
      nonce,
      opaque,
      uri: '/private/x',
    })
    const calls = authority.calls
    const res = await send(g, '/private/x', header, newIp())
    expect(res.status).toBe(401)
    expect(authority.calls).toBe(calls)
    expect(await objectsOf([handleOf(header)])).toEqual([])
    expect(atOrigin('/private/x')).toEqual([])
  })

  it("one challenge's nonce with another's opaque, or a session's: refused, nothing stored", async () => {
    const g = isolate()
    const s = await loggedIn(g)
    const user = addUser(authority, 'right', 'red')
    const c1 = challengeOf(await g.fetch(new Request(`${GATE}/private/y`)))
    const c2 = challengeOf(await g.fetch(new Request(`${GATE}/private/y`)))
    const calls = authority.calls
    const reserved = await storedNonce(s.handle, s.nonce)
    const combos = [
      { nonce: c1.nonce, opaque: c2.opaque, user },
      // A fresh challenge's nonce under the live session's opaque, and the other way round.
      { nonce: c1.nonce, opaque: s.opaque, user: s.user },
      { nonce: s.nonce, opaque: c1.opaque, user: s.user },
    ]
    for (const [i, combo] of combos.entries()) {
      const header = await authorization({
        ...combo,
        password: 'right',
        uri: '/private/y',
        nc: 300 + i,
      })
      expect((await send(g, '/private/y', header, newIp())).status).toBe(401)
    }
    expect(authority.calls).toBe(calls)
    expect(atOrigin('/private/y')).toEqual([])
    expect(
      await objectsOf([handleOf(`nonce="${c1.nonce}"`), handleOf(`nonce="${c2.nonce}"`)])
    ).toEqual([])
    // The session's nonce state was not touched by the combination that named its nonce.
    expect(await storedNonce(s.handle, s.nonce)).toBe(reserved)
  })

  it('an expired nonce answered with the right password: stale, and no nc recorded for it', async () => {
    const g = isolate()
    const s = await loggedIn(g)
    const reserved = await storedNonce(s.handle, s.nonce)
    expect(reserved).toBeGreaterThan(0)
    vi.setSystemTime(Date.now() + 301_000)
    // Past the reservation mark: had it been recorded, a new mark would have been written.
    const nc = (reserved ?? 0) + 10
    const header = await authorization({
      user: s.user,
      password: 'right',
      nonce: s.nonce,
      opaque: s.opaque,
      uri: '/private/expired',
      nc,
    })
    const res = await send(g, '/private/expired', header, s.ip)
    expect(res.status).toBe(401)
    expect(challengeOf(res).stale).toBe(true)
    expect(atOrigin('/private/expired')).toEqual([])
    expect(await storedNonce(s.handle, s.nonce)).toBe(reserved)
    // The session carries on with the fresh nonce it was given.
    expect((await s.c.fetch('/private/fresh', { headers: s.headers })).status).toBe(200)
  })
})

describe('guessing against a cached key from many buckets', () => {
  it('past the limit over all buckets, a right guess from yet another bucket is braked, not verified', async () => {
    const g = isolate()
    const s = await loggedIn(g)
    const global = DEFAULT_BRAKE_POLICY.userGlobalFailures
    const guessFrom = async (password: string, nc: number, ip: string) =>
      send(
        g,
        `/private/spread-${nc}`,
        await authorization({
          user: s.user,
          password,
          nonce: s.nonce,
          opaque: s.opaque,
          uri: `/private/spread-${nc}`,
          nc,
        }),
        ip
      )
    // Each guess from a bucket of its own: no bucket ever past its own free mismatch.
    const statuses: number[] = []
    for (let i = 0; i < global + 5; i++) {
      statuses.push((await guessFrom(`wrong-${i}`, 500 + i, newIp())).status)
    }
    // Counted in the counter over all buckets: past its threshold each wrong one is told to wait.
    expect(statuses.slice(0, global - 1)).toEqual(Array(global - 1).fill(401))
    expect(statuses.slice(global)).toEqual(Array(5).fill(429))
    // The password found: from one more fresh bucket it must wait its turn like any other guess.
    const right = await guessFrom('right', 900, newIp())
    expect(right.status).toBe(429)
    expect(atOrigin('/private/spread-900')).toEqual([])
    // The real client, in its own bucket, goes on without the brakes.
    expect((await s.c.fetch('/private/spread-home', { headers: s.headers })).status).toBe(200)
  })

  it("guessers from four buckets sent with the client's requests (batched): one judged free, three admitted first", async () => {
    const g = isolate()
    const s = await loggedIn(g)
    const good = async (p: string) =>
      [p, (await s.c.raw.authorizationFor('GET', `${GATE}${p}`)) ?? '', s.ip] as const
    const guessers = [newIp(), newIp(), newIp(), newIp()]
    const guesses = await Promise.all(
      guessers.map(
        async (ip, i) =>
          [
            `/private/ride-guess-${i}`,
            await authorization({
              user: s.user,
              password: `wrong-${i}`,
              nonce: s.nonce,
              opaque: s.opaque,
              uri: `/private/ride-guess-${i}`,
              nc: 800 + i,
            }),
            ip,
          ] as const
      )
    )
    const reqs = [
      await good('/private/ride-lead'),
      await good('/private/ride-0'),
      ...guesses.slice(0, 2),
      await good('/private/ride-1'),
      ...guesses.slice(2),
      await good('/private/ride-2'),
    ]
    const res = await Promise.all(reqs.map(([p, h, ip]) => send(g, p, h, ip)))
    await g.settled()
    reqs.forEach(([p], i) => {
      const status = res[i]?.status
      if (p.includes('guess')) expect([401, 429]).toContain(status)
      else expect(status).toBe(200)
    })
    expect(origin.requests.filter((r) => r.path.startsWith('/private/ride-guess-'))).toEqual([])
    // An admission spends the bucket's authority-call budget; a free mismatch does not.
    const budgets = await Promise.all(
      guessers.map((ip) =>
        runInDurableObject(
          env.BRAKE_COUNTERS.getByName(`bucket:${ip}`),
          (_, state) => state.storage.sql.exec('SELECT count FROM budget').toArray().length
        )
      )
    )
    expect(budgets.sort()).toEqual([0, 1, 1, 1])
  })

  it("the client's own buckets make no brake call while it is guessed at; after an eviction one admission", async () => {
    const g = isolate({ LOG_LEVEL: 'all' })
    const s = await loggedIn(g)
    const decisions = captureDecisions()
    const guess = await authorization({
      user: s.user,
      password: 'wrong',
      nonce: s.nonce,
      opaque: s.opaque,
      uri: '/private/own-guess',
      nc: 700,
    })
    expect((await send(g, '/private/own-guess', guess, newIp())).status).toBe(401)
    const calls = async (path: string) => {
      decisions.length = 0
      expect((await s.c.fetch(path, { headers: s.headers })).status).toBe(200)
      return decisions.map((d) => d.contextCalls)
    }
    // Verified from its bucket at the login: one context call, no admission.
    expect(await calls('/private/own-1')).toEqual([1])
    // An eviction (its nc state written first, so no stale) forgets which buckets were its own.
    await env.CONTEXTS.getByName(s.handle).flushNcState()
    // The eviction waits on the runtime's clock, which a frozen Date would stop.
    vi.useRealTimers()
    await evictDurableObject(env.CONTEXTS.getByName(s.handle)).catch(() => {})
    vi.useFakeTimers({ toFake: ['Date'] })
    // verify (admission_required), the brakes' admission, verify again.
    expect(await calls('/private/own-2')).toEqual([3])
    expect(await calls('/private/own-3')).toEqual([1])
    await g.settled()
  })
})

describe("the operator's console", () => {
  const API = '/.digest-gate/api'
  const CSRF = { 'X-Digest-Gate-Console': '1' }

  it('a non-member with the right password and the console header revokes nothing (403)', async () => {
    const g = isolate({ CONSOLE_GROUP: 'admin' })
    const member = await loggedIn(g, ['admin'])
    const outsider = await loggedIn(g, ['staff'])
    const attempts = [
      outsider.c.fetch(`${API}/sessions/${member.handle}/revoke`, {
        method: 'POST',
        headers: { ...outsider.headers, ...CSRF },
      }),
      outsider.c.fetch(`${API}/users/${encodeURIComponent(member.user)}/revoke`, {
        method: 'POST',
        headers: { ...outsider.headers, ...CSRF },
      }),
    ]
    for (const res of await Promise.all(attempts)) expect(res.status).toBe(403)
    const before = member.c.sent.length
    expect(
      (await member.c.fetch('/private/member-after', { headers: member.headers })).status
    ).toBe(200)
    // Verified from the cached key: the member's session was not touched.
    expect(member.c.sent.slice(before).map((x) => x.status)).toEqual([200])
  })

  it("a member whose session was revoked: the session's next console call is refused, nothing revoked", async () => {
    const g = isolate({ CONSOLE_GROUP: 'admin' })
    const member = await loggedIn(g, ['admin'])
    const other = await loggedIn(g)
    const revoke = await g.fetch(
      new Request(`${GATE}/.digest-gate/admin/contexts/${member.handle}/revoke`, {
        method: 'POST',
        headers: { authorization: 'Bearer test-admin-token-0123456789abcdef0123' },
      })
    )
    expect(revoke.status).toBe(200)
    // The revoked session's next request, as its client would send it (next nc, same nonce).
    const url = `${GATE}${API}/sessions/${other.handle}/revoke`
    const header = (await member.c.raw.authorizationFor('POST', url)) ?? ''
    const res = await g.fetch(
      new Request(url, {
        method: 'POST',
        headers: { authorization: header, 'cf-connecting-ip': member.ip, ...CSRF },
      })
    )
    expect(res.status).toBe(401)
    const before = other.c.sent.length
    expect((await other.c.fetch('/private/other-after', { headers: other.headers })).status).toBe(
      200
    )
    expect(other.c.sent.slice(before).map((x) => x.status)).toEqual([200])
  })
})

describe('the in-memory store (Node, Bun, Deno) decides alike', () => {
  const policy: ContextPolicy = {
    replay: 'window',
    windowSize: 128,
    nonceLifetime: 300,
    idleTimeout: 1800,
    maxLifetime: 43_200,
    revalidateAfter: 600,
    freeMismatches: 1,
    brakes: true,
  }
  const now = 1_900_000_000
  const nonce = 'memory-store-nonce'
  async function requestFrom(bucket: string, nc: number, password: string) {
    const ncRaw = nc.toString(16).padStart(8, '0')
    const ha1 = await baseHA1('SHA-256', 'mallory-target', REALM, password)
    const uri = `/private/mem-${nc}`
    const response = await computeResponse({
      algorithm: 'SHA-256',
      ha1,
      nonce,
      nc: ncRaw,
      cnonce: 'c0ffee',
      qop: 'auth',
      method: 'GET',
      uri,
    })
    const req: ContextRequest = {
      username: 'mallory-target',
      userhash: false,
      realm: REALM,
      algorithm: 'SHA-256',
      nonce,
      nonceIssuedAt: now,
      nonceExpired: false,
      uri,
      method: 'GET',
      response,
      qop: 'auth',
      nc,
      ncRaw,
      cnonce: 'c0ffee',
      now,
      bucket,
    }
    return { req, ha1 }
  }

  it('spread guesses need admission after the first; the client is not asked; a revoke beats a revalidation', async () => {
    const store = memoryContexts()
    const { req, ha1 } = await requestFrom('home', 1, 'right')
    const principal = { name: 'mallory-target', groups: [] }
    const established = await store.establish(
      'mem-handle',
      { ...req, principal, sessionKey: ha1, startedAt: now * 1000 },
      policy
    )
    expect(established.kind).toBe('established')
    const kinds: string[] = []
    for (let i = 0; i < 4; i++) {
      const guess = await requestFrom(`guesser-${i}`, 10 + i, `wrong-${i}`)
      kinds.push((await store.verify('mem-handle', guess.req, policy)).kind)
    }
    expect(kinds).toEqual([
      'mismatch',
      'admission_required',
      'admission_required',
      'admission_required',
    ])
    // The right answer from a fresh bucket waits for the brakes too; from home it does not.
    const right = await requestFrom('guesser-9', 20, 'right')
    expect((await store.verify('mem-handle', right.req, policy)).kind).toBe('admission_required')
    expect((await store.verify('mem-handle', { ...right.req, admitted: true }, policy)).kind).toBe(
      'verified'
    )
    const home = await requestFrom('home', 2, 'right')
    expect((await store.verify('mem-handle', home.req, policy)).kind).toBe('verified')
    expect(await store.revalidated('mem-handle', principal, now + 1)).toBe(true)
    await store.revoke('mem-handle', now + 2, policy)
    expect(await store.revalidated('mem-handle', principal, now + 3)).toBe(false)
  })
})

describe('one user, many spellings (USERHASH)', () => {
  it('a userhash in other cases of its hex is the same user to the brakes: no fresh counters per spelling', async () => {
    const g = isolate({ USERHASH: 'true' })
    const user = addUser(authority, 'right', 'red')
    const hex = userhash('SHA-256', user, REALM)
    const letters = [...hex].flatMap((ch, i) => (/[a-f]/.test(ch) ? [i] : []))
    /** The hash with its k-th letter upper-cased: what an authority reading hex accepts alike. */
    const spelling = (k: number) => {
      const at = letters[k % letters.length] ?? 0
      return hex.slice(0, at) + hex.charAt(at).toUpperCase() + hex.slice(at + 1)
    }
    const global = DEFAULT_BRAKE_POLICY.userGlobalFailures
    const statuses: number[] = []
    for (let k = 0; k < global + 3; k++) {
      const { nonce, opaque } = challengeOf(await g.fetch(new Request(`${GATE}/private/uh`)))
      const ha1 = await baseHA1('SHA-256', user, REALM, `wrong-${k}`)
      const response = await computeResponse({
        algorithm: 'SHA-256',
        ha1,
        nonce,
        nc: '00000001',
        cnonce: 'c0ffee',
        qop: 'auth',
        method: 'GET',
        uri: '/private/uh',
      })
      const header = formatAuthorization({
        username: spelling(k),
        userhash: true,
        realm: REALM,
        nonce,
        uri: '/private/uh',
        response,
        algorithm: 'SHA-256',
        cnonce: 'c0ffee',
        opaque,
        qop: 'auth',
        nc: 1,
        ncRaw: '00000001',
      })
      // Each from an address of its own: only the user's counter over all buckets can stop it.
      statuses.push((await send(g, '/private/uh', header, newIp())).status)
      await g.settled()
    }
    expect(statuses.slice(0, global - 1)).toEqual(Array(global - 1).fill(401))
    expect(statuses.slice(global)).toEqual([429, 429, 429])
  })
})
