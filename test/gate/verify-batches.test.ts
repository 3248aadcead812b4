/**
 * A session's concurrent requests share calls to its security context (VerifyBatches), with the
 * guarantees of one call each: every request reaches the origin once, a captured request is
 * accepted once however many copies arrive together, a wrong answer is counted once and does not
 * disturb the others, a failed call fails every request in it as a failed verify does, and no
 * two handles share a call. Real Durable Objects; every call to a context object is recorded
 * with its items' nonces.
 */
import { runInDurableObject } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { readNonceFields } from '../../src/digest/tokens.ts'
import type { DecisionLog } from '../../src/gate/decision-log.ts'
import type { SecurityContext, VerifyItem } from '../../src/gate/security-context.ts'
import { batching, wakeupsStayInTheirRequest } from '../../src/gate/verify-batches.ts'
import type { buildGate } from '../../src/index.ts'
import {
  authorization,
  captureDecisions,
  client,
  type FakeAuthority,
  type FakeOrigin,
  GATE,
  installPeers,
  settlingGate,
} from './fakes.ts'
import { addressesIn, addUser } from './support/fresh-names.ts'

let authority: FakeAuthority
let origin: FakeOrigin
let decisions: DecisionLog[]

beforeEach(() => {
  // This runner turns off workerd's cross-request wake-ups; these requests share the test's
  // context, where a woken request goes on in its own context anyway.
  batching.enabled = true
  ;({ authority, origin } = installPeers())
  decisions = captureDecisions()
  vi.useFakeTimers({ toFake: ['Date'] })
})
afterEach(() => {
  batching.enabled = undefined
  vi.useRealTimers()
  vi.restoreAllMocks()
})

const newIp = addressesIn('198.51.100')

const newUser = (password?: string) => addUser(authority, password, 'batch-user')

/** One call to a context object: its name, method and the nonces of the requests it carried. */
interface Call {
  name: string
  method: string
  nonces: string[]
}

const handleOfNonce = (nonce: string) => readNonceFields(nonce)?.handle ?? ''

/**
 * A gate (one isolate: a fresh batcher) whose context objects record every call; `fail` makes
 * verify and verifyMany throw `failure` before they reach the object.
 */
function recordingGate(vars: Record<string, string> = {}) {
  const calls: Call[] = []
  const control: { failure: Error | undefined } = { failure: undefined }
  class Contexts {
    getByName(name: string) {
      const stub = env.CONTEXTS.getByName(name)
      return new Proxy(stub, {
        get(target, prop) {
          const value = Reflect.get(target, prop)
          if (typeof value !== 'function' || typeof prop !== 'string') return value
          return (...args: unknown[]) => {
            const nonces =
              prop === 'verifyMany'
                ? (args[0] as VerifyItem[]).map((i) => i.req.nonce)
                : prop === 'verify'
                  ? [(args[0] as VerifyItem['req']).nonce]
                  : []
            calls.push({ name, method: prop, nonces })
            if (control.failure && (prop === 'verify' || prop === 'verifyMany')) {
              return Promise.reject(control.failure)
            }
            return Reflect.apply(value, target, args)
          }
        },
      })
    }
  }
  const e = {
    ...env,
    LOG_LEVEL: 'all',
    ...vars,
    CONTEXTS: new Contexts() as unknown as DurableObjectNamespace<SecurityContext>,
  } as Parameters<typeof buildGate>[0]
  const { fetch, settled } = settlingGate(e)
  const verifies = () => calls.filter((c) => c.method === 'verify' || c.method === 'verifyMany')
  return { fetch, calls, verifies, control, settled }
}

/** A logged-in session: the client, its handle and address. */
async function loggedIn(g: ReturnType<typeof recordingGate>, ip = newIp()) {
  const user = newUser('right')
  const headers = { 'cf-connecting-ip': ip }
  const c = client(g.fetch, user, 'right')
  expect((await c.fetch('/private/login', { headers })).status).toBe(200)
  await g.settled()
  const sent = c.sent.find((s) => s.status === 200)?.authorization ?? ''
  const nonce = /nonce="([^"]+)"/.exec(sent)?.[1] ?? ''
  const opaque = /opaque="([^"]+)"/.exec(sent)?.[1] ?? ''
  g.calls.length = 0
  decisions.length = 0
  return { c, user, ip, headers, nonce, opaque, handle: handleOfNonce(nonce) }
}

/** The same request, `n` times: precomputed headers sent together. */
function sendAll(g: ReturnType<typeof recordingGate>, ip: string, reqs: [string, string][]) {
  return Promise.all(
    reqs.map(([path, authorizationHeader]) =>
      g.fetch(
        new Request(`${GATE}${path}`, {
          headers: { authorization: authorizationHeader, 'cf-connecting-ip': ip },
        })
      )
    )
  )
}

/** Wrong responses a context object holds for a bucket (an address, here). */
function failuresOf(handle: string, bucket: string): Promise<number> {
  return runInDurableObject(env.CONTEXTS.getByName(handle), (_: SecurityContext, state) => {
    const row = state.storage.sql
      .exec<{ count: number }>('SELECT count FROM failures WHERE bucket = ?', bucket)
      .toArray()[0]
    return row?.count ?? 0
  })
}

const originPaths = (prefix: string) =>
  origin.requests.map((r) => r.path).filter((p) => p.startsWith(prefix))

describe('concurrent requests of one session', () => {
  for (const n of [8, 16]) {
    it(`${n} with distinct nc: all 200, each at the origin once, in fewer calls than requests`, async () => {
      const g = recordingGate()
      const s = await loggedIn(g)
      const paths = Array.from({ length: n }, (_, i) => `/private/par${n}-${i}`)
      const statuses = await Promise.all(
        paths.map(async (p) => (await s.c.fetch(p, { headers: s.headers })).status)
      )
      expect(statuses).toEqual(Array(n).fill(200))
      expect(originPaths(`/private/par${n}-`).sort()).toEqual([...paths].sort())
      const calls = g.verifies()
      expect(calls.length).toBeLessThanOrEqual(3)
      expect(calls.some((c) => c.method === 'verifyMany')).toBe(true)
      expect(calls.flatMap((c) => c.nonces)).toHaveLength(n)
      // The decision log counts the calls made, not the requests: riders made none.
      const verified = decisions.filter((d) => d.outcome === 'verified_at_edge')
      expect(verified).toHaveLength(n)
      expect(verified.reduce((sum, d) => sum + d.contextCalls, 0)).toBe(calls.length)
      expect(verified.every((d) => d.contextCalls <= 1)).toBe(true)
      expect(authority.calls).toBe(1)
    })
  }

  it('one at a time: one verify per request, as before', async () => {
    const g = recordingGate()
    const s = await loggedIn(g)
    for (let i = 0; i < 5; i++) {
      expect((await s.c.fetch(`/private/seq-${i}`, { headers: s.headers })).status).toBe(200)
    }
    expect(g.calls.map((c) => c.method)).toEqual(Array(5).fill('verify'))
  })
})

describe("where woken requests would go on in the waker's context", () => {
  it('batching is off: this runner turns the cross-request flag off, and each request calls alone', async () => {
    batching.enabled = undefined
    expect(wakeupsStayInTheirRequest()).toBe(false)
    const g = recordingGate()
    const s = await loggedIn(g)
    const res = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        s.c.fetch(`/private/nobatch-${i}`, { headers: s.headers })
      )
    )
    expect(res.map((r) => r.status)).toEqual(Array(6).fill(200))
    expect(g.verifies().map((c) => c.method)).toEqual(Array(6).fill('verify'))
  })
})

describe('the other paths through verify', () => {
  it('replay mode off: cold requests share calls, then the isolate cache answers', async () => {
    const g = recordingGate({ REPLAY_MODE: 'off' })
    const s = await loggedIn(g)
    // The login warmed nothing in this isolate's cache (establish does not fill it).
    const first = await Promise.all(
      Array.from({ length: 8 }, (_, i) => s.c.fetch(`/private/off-${i}`, { headers: s.headers }))
    )
    expect(first.map((r) => r.status)).toEqual(Array(8).fill(200))
    const calls = g.verifies().length
    expect(calls).toBeLessThan(8)
    const again = await Promise.all(
      Array.from({ length: 8 }, (_, i) => s.c.fetch(`/private/off2-${i}`, { headers: s.headers }))
    )
    expect(again.map((r) => r.status)).toEqual(Array(8).fill(200))
    expect(g.verifies().length).toBe(calls)
    expect(originPaths('/private/off')).toHaveLength(16)
  })

  it('auth-int: each request asked twice (the second with its body hash), all verified', async () => {
    const g = recordingGate({ QOP: 'auth,auth-int', AUTH_INT_MAX_BODY: '1024' })
    const user = newUser('right')
    const headers = { 'cf-connecting-ip': newIp() }
    const c = client(g.fetch, user, 'right', { preferAuthInt: true, verifyRspauth: false })
    expect(
      (await c.fetch('/private/int-login', { method: 'POST', body: 'x', headers })).status
    ).toBe(200)
    g.calls.length = 0
    const res = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        c.fetch(`/private/int-${i}`, { method: 'POST', body: `body-${i}`, headers })
      )
    )
    expect(res.map((r) => r.status)).toEqual(Array(8).fill(200))
    const bodies = origin.requests.filter(
      (r) => r.path.startsWith('/private/int-') && r.path !== '/private/int-login'
    )
    expect(bodies.map((r) => r.body).sort()).toEqual(
      Array.from({ length: 8 }, (_, i) => `body-${i}`).sort()
    )
    // need_body, then the verdict: 16 items, in fewer calls.
    expect(g.verifies().flatMap((c) => c.nonces)).toHaveLength(16)
    expect(g.verifies().length).toBeLessThan(16)
  })
})

describe('the same captured request sent many times at once', () => {
  it('15 copies: exactly one accepted, the origin sees it once, the others 401', async () => {
    const g = recordingGate()
    const s = await loggedIn(g)
    const captured = (await s.c.raw.authorizationFor('GET', `${GATE}/private/once`)) ?? ''
    const res = await sendAll(g, s.ip, Array(15).fill(['/private/once', captured]))
    const statuses = res.map((r) => r.status)
    expect(statuses.filter((st) => st === 200)).toHaveLength(1)
    expect(statuses.filter((st) => st === 401)).toHaveLength(14)
    expect(originPaths('/private/once')).toHaveLength(1)
  })

  it('copies that land in one batch: still exactly one accepted', async () => {
    const g = recordingGate()
    const s = await loggedIn(g)
    const other = (await s.c.raw.authorizationFor('GET', `${GATE}/private/lead`)) ?? ''
    const captured = (await s.c.raw.authorizationFor('GET', `${GATE}/private/twice`)) ?? ''
    // The first request holds the lane; the copies queue behind it and go out together.
    const res = await sendAll(g, s.ip, [
      ['/private/lead', other],
      ...Array<[string, string]>(12).fill(['/private/twice', captured]),
    ])
    expect(res[0]?.status).toBe(200)
    const copies = res.slice(1).map((r) => r.status)
    expect(copies.filter((st) => st === 200)).toHaveLength(1)
    expect(copies.filter((st) => st === 401)).toHaveLength(11)
    expect(originPaths('/private/twice')).toHaveLength(1)
    const capturedNonceCount = (c: Call) => c.nonces.length
    const batches = g.verifies().filter((c) => c.method === 'verifyMany')
    expect(batches.length).toBeGreaterThan(0)
    expect(Math.max(...batches.map(capturedNonceCount))).toBeGreaterThan(1)
  })
})

describe('a wrong answer inside a batch', () => {
  it('is refused and counted once; the requests around it are unaffected', async () => {
    const g = recordingGate()
    const s = await loggedIn(g)
    const good = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const path = `/private/good-${i}`
        return [path, (await s.c.raw.authorizationFor('GET', `${GATE}${path}`)) ?? ''] as [
          string,
          string,
        ]
      })
    )
    // A guess at a fresh nc on the session's nonce, between the real ones.
    const forged = await authorization({
      user: s.user,
      password: 'wrong',
      nonce: s.nonce,
      opaque: s.opaque,
      uri: '/private/forged',
      nc: 1000,
    })
    const reqs: [string, string][] = [
      ...good.slice(0, 4),
      ['/private/forged', forged],
      ...good.slice(4),
    ]
    const res = await sendAll(g, s.ip, reqs)
    expect(res.map((r) => r.status)).toEqual([200, 200, 200, 200, 401, 200, 200, 200, 200])
    expect(originPaths('/private/forged')).toEqual([])
    expect(originPaths('/private/good-')).toHaveLength(8)
    expect(await failuresOf(s.handle, s.ip)).toBe(1)
    expect(g.verifies().some((c) => c.method === 'verifyMany')).toBe(true)
  })

  it('past the free mismatches every further guess is admitted by the brakes first, as without batching', async () => {
    const g = recordingGate()
    const s = await loggedIn(g)
    const guesses = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        authorization({
          user: s.user,
          password: `wrong-${i}`,
          nonce: s.nonce,
          opaque: s.opaque,
          uri: `/private/guess-${i}`,
          nc: 2000 + i,
        }).then((h) => [`/private/guess-${i}`, h] as [string, string])
      )
    )
    const lead = (await s.c.raw.authorizationFor('GET', `${GATE}/private/lead2`)) ?? ''
    const res = await sendAll(g, s.ip, [['/private/lead2', lead], ...guesses])
    expect(res[0]?.status).toBe(200)
    // Refused, whether by the context (401) or by the brakes it sent them to (429).
    for (const r of res.slice(1)) expect([401, 429]).toContain(r.status)
    expect(originPaths('/private/guess-')).toEqual([])
    // The first judged is free (a mismatch, counted); each later one came back
    // admission_required, and only once the brakes admitted it was it asked again and counted:
    // every guess that reached a judgement is counted by the object exactly once.
    const asks = g.verifies().flatMap((c) => c.nonces).length
    const admitted = asks - 6
    expect(admitted).toBeGreaterThan(0)
    expect(await failuresOf(s.handle, s.ip)).toBe(1 + admitted)
    await g.settled()
    // The session itself carries on.
    expect((await s.c.fetch('/private/after', { headers: s.headers })).status).toBe(200)
  })
})

describe('a call that fails', () => {
  it('fails every queued request as a failed verify does, and none hangs', async () => {
    const g = recordingGate()
    const s = await loggedIn(g)
    // What one failed verify gets today: a store fault, 503.
    g.control.failure = Object.assign(new Error('Durable Object is overloaded'), {
      overloaded: true,
    })
    const alone = await s.c.fetch('/private/alone', { headers: s.headers })
    expect(alone.status).toBe(503)
    const paths = Array.from({ length: 10 }, (_, i) => `/private/down-${i}`)
    const headers = await Promise.all(
      paths.map(
        async (p) =>
          [p, (await s.c.raw.authorizationFor('GET', `${GATE}${p}`)) ?? ''] as [string, string]
      )
    )
    const res = await sendAll(g, s.ip, headers)
    expect(res.map((r) => r.status)).toEqual(Array(10).fill(503))
    expect(g.verifies().some((c) => c.method === 'verifyMany')).toBe(true)
    expect(origin.requests.filter((r) => r.path.startsWith('/private/down-'))).toEqual([])
    // The object is reachable again: the lane was freed, the session carries on.
    g.control.failure = undefined
    expect((await s.c.fetch('/private/back', { headers: s.headers })).status).toBe(200)
  })
})

describe('handles', () => {
  it('never share a call', async () => {
    const g = recordingGate()
    const a = await loggedIn(g)
    const b = await loggedIn(g)
    const res = await Promise.all(
      Array.from({ length: 12 }, (_, i) => {
        const s = i % 2 ? a : b
        return s.c.fetch(`/private/mixed-${i}`, { headers: s.headers })
      })
    )
    expect(res.map((r) => r.status)).toEqual(Array(12).fill(200))
    const calls = g.verifies()
    expect(calls.some((c) => c.method === 'verifyMany')).toBe(true)
    for (const c of calls) {
      for (const nonce of c.nonces) expect(handleOfNonce(nonce)).toBe(c.name)
    }
    expect(new Set(calls.map((c) => c.name))).toEqual(new Set([a.handle, b.handle]))
  })
})
