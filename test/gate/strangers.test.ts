/**
 * Storage and work for strangers. Anyone gets a 401 challenge for free; its nonce is `fresh` (a
 * new handle, no context). An answer on it must be braked before anything else, and must not
 * create the handle's security-context object (on workerd any call to an object creates its
 * SQLite file, written or not) until the authority has verified the user. Real Durable Objects;
 * every call the gate makes to a context or brake object is recorded, by method.
 */
import { listDurableObjectIds, runInDurableObject } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { readNonceFields } from '../../src/digest/tokens.ts'
import type { Brake } from '../../src/gate/brake.ts'
import { DEFAULT_BRAKE_POLICY } from '../../src/gate/brake-policy.ts'
import type { SecurityContext } from '../../src/gate/security-context.ts'
import type { buildGate } from '../../src/index.ts'
import {
  authorization,
  challengeOf,
  client,
  type FakeAuthority,
  type FakeOrigin,
  GATE,
  type GateFetch,
  installPeers,
  REALM,
  settlingGate,
} from './fakes.ts'
import { addressesIn, addUser, unique } from './support/fresh-names.ts'

let authority: FakeAuthority
let origin: FakeOrigin

beforeEach(() => {
  ;({ authority, origin } = installPeers())
  // Date only: the brakes' counters do not drain while a test reads them.
  vi.useFakeTimers({ toFake: ['Date'] })
})
afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

const newIp = addressesIn('198.51.100')
const THRESHOLD = DEFAULT_BRAKE_POLICY.userFailures

const newUser = (password?: string) => addUser(authority, password)

/** One call the gate made to a Durable Object: which object (by name) and which method. */
interface Call {
  name: string
  method: string
}

/** A stub that records each method called on it. */
function recorded<T extends object>(stub: T, name: string, calls: Call[]): T {
  return new Proxy(stub, {
    get(target, prop) {
      const value = Reflect.get(target, prop)
      if (typeof value !== 'function' || typeof prop !== 'string') return value
      return (...args: unknown[]) => {
        calls.push({ name, method: prop })
        return Reflect.apply(value, target, args)
      }
    },
  })
}

/**
 * A gate (one isolate's Workspace: each call builds a new one) on the test's bindings, recording
 * every call to a security-context object and to a brake object.
 */
function recordingGate(vars: Record<string, string> = {}) {
  const contextCalls: Call[] = []
  const brakeCalls: Call[] = []
  // Class instances, not plain objects: configuration reads plain objects in env as JSON vars.
  class Contexts {
    getByName(name: string) {
      return recorded(env.CONTEXTS.getByName(name), name, contextCalls)
    }
  }
  class Brakes {
    getByName(name: string) {
      return recorded(env.BRAKE_COUNTERS.getByName(name), name, brakeCalls)
    }
  }
  const e = {
    ...env,
    ...vars,
    CONTEXTS: new Contexts() as unknown as DurableObjectNamespace<SecurityContext>,
    BRAKE_COUNTERS: new Brakes() as unknown as DurableObjectNamespace<Brake>,
  } as Parameters<typeof buildGate>[0]
  const { fetch, settled } = settlingGate(e)
  const admissions = () => brakeCalls.filter((c) => c.method === 'admitFromBucket').length
  const refunds = () => brakeCalls.filter((c) => c.method === 'refundToBucket').length
  return {
    fetch,
    contextCalls,
    brakeCalls,
    admissions,
    refunds,
    /** Background work done: the brakes' refunds. */
    settled,
  }
}

const handleOf = (authorizationHeader: string) =>
  readNonceFields(/nonce="([^"]+)"/.exec(authorizationHeader)?.[1] ?? '')?.handle ?? ''

/** Which of these handles have a SecurityContext object (a SQLite file) now. */
async function objectsOf(handles: string[]): Promise<string[]> {
  const ids = new Set((await listDurableObjectIds(env.CONTEXTS)).map((id) => id.toString()))
  return handles.filter((h) => ids.has(env.CONTEXTS.idFromName(h).toString()))
}

/** What the brake objects of one bucket and one user hold (level per counter). */
async function brakeRows(ip: string, user: string) {
  const rows = (name: string) =>
    runInDurableObject(env.BRAKE_COUNTERS.getByName(name), (_: Brake, state) =>
      state.storage.sql
        .exec<{ key: string; level: number }>('SELECT key, level FROM counters ORDER BY key')
        .toArray()
        .map((r) => ({ ...r }))
    )
  return {
    bucket: await rows(`bucket:${ip}`),
    user: await rows(`user:${JSON.stringify([REALM, user])}`),
  }
}

/** A bare request, then an answer to its challenge: the answer's status and handle. */
async function answerChallenge(
  send: GateFetch,
  o: { user: string; password: string; nc: number; ip: string; path?: string }
): Promise<{ status: number; handle: string; reason?: string }> {
  const path = o.path ?? '/private/x'
  const headers = { 'cf-connecting-ip': o.ip }
  const challenge = challengeOf(await send(new Request(`${GATE}${path}`, { headers })))
  const h = await authorization({ ...o, ...challenge, uri: path })
  const res = await send(
    new Request(`${GATE}${path}`, { headers: { ...headers, authorization: h } })
  )
  return { status: res.status, handle: handleOf(h) }
}

describe('strangers answering fresh challenges', () => {
  const cases = [
    { what: 'a wrong password, nc=1', known: true, nc: 1 },
    { what: 'a wrong password, nc=2', known: true, nc: 2 },
    { what: 'an unknown user, nc=1', known: false, nc: 1 },
    { what: 'an unknown user, nc=2', known: false, nc: 2 },
  ]
  for (const c of cases) {
    it(`${c.what}: braked first, every answer counted, no context object created`, async () => {
      const g = recordingGate()
      const user = c.known ? newUser() : unique('nobody')
      const ip = newIp()
      const n = THRESHOLD + 5
      const answers = []
      for (let i = 0; i < n; i++) {
        answers.push(await answerChallenge(g.fetch, { user, password: `guess-${i}`, nc: c.nc, ip }))
      }
      const handles = answers.map((a) => a.handle)
      expect(new Set(handles).size).toBe(n)
      // The brakes counted each one: the (threshold+1)th is refused, and only the admitted ones
      // reached the authority.
      expect(answers.map((a) => a.status)).toEqual([
        ...Array(THRESHOLD).fill(401),
        ...Array(n - THRESHOLD).fill(429),
      ])
      expect(g.admissions()).toBe(n)
      expect(authority.calls).toBe(THRESHOLD)
      // Not one call to a security-context object, and no object (no SQLite file) exists.
      expect(g.contextCalls).toEqual([])
      expect(await objectsOf(handles)).toEqual([])
      expect(origin.requests).toHaveLength(0)
    })
  }

  it('parallel wrong answers on one fresh challenge: each admitted, none touches the object', async () => {
    const g = recordingGate()
    const user = newUser()
    const ip = { 'cf-connecting-ip': newIp() }
    const challenge = challengeOf(await g.fetch(new Request(`${GATE}/private/p`, { headers: ip })))
    const headers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        authorization({ user, password: `guess-${i}`, ...challenge, nc: i + 1, uri: '/private/p' })
      )
    )
    const statuses = (
      await Promise.all(
        headers.map((h) =>
          g.fetch(new Request(`${GATE}/private/p`, { headers: { ...ip, authorization: h } }))
        )
      )
    ).map((r) => r.status)
    expect(statuses).toEqual(Array(8).fill(401))
    expect(g.admissions()).toBe(8)
    expect(authority.calls).toBe(8)
    expect(g.contextCalls).toEqual([])
    expect(await objectsOf([handleOf(headers[0] ?? '')])).toEqual([])
  })

  it('a fresh nonce forged into a non-fresh one (the flag bit cleared) is refused by its MAC', async () => {
    const g = recordingGate()
    const ip = { 'cf-connecting-ip': newIp() }
    const challenge = challengeOf(await g.fetch(new Request(`${GATE}/private/f`, { headers: ip })))
    const bytes = Uint8Array.from(
      atob(challenge.nonce.replace(/-/g, '+').replace(/_/g, '/')),
      (ch) => ch.charCodeAt(0)
    )
    const randomAt = 7 + (bytes[6] as number) + 16
    expect((bytes[randomAt] as number) & 0x80).toBe(0x80)
    bytes[randomAt] = (bytes[randomAt] as number) & 0x7f
    const nonce = btoa(String.fromCharCode(...bytes))
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
      .replace(/=+$/, '')
    const h = await authorization({
      user: 'alice',
      password: 'guess',
      nonce,
      opaque: challenge.opaque,
      uri: '/private/f',
    })
    const res = await g.fetch(
      new Request(`${GATE}/private/f`, { headers: { ...ip, authorization: h } })
    )
    expect(res.status).toBe(401)
    expect(challengeOf(res).stale).toBe(false)
    expect(g.contextCalls).toEqual([])
    expect(g.admissions()).toBe(0)
    expect(authority.calls).toBe(0)
  })
})

describe('clients that log in', () => {
  it('a login and 20 later requests: 1 authority call, no brake call after the login', async () => {
    const g = recordingGate()
    const user = newUser('right')
    const ip = { 'cf-connecting-ip': newIp() }
    const alice = client(g.fetch, user, 'right')
    expect((await alice.fetch('/private/0', { headers: ip })).status).toBe(200)
    await g.settled()
    const handle = handleOf(alice.sent.find((s) => s.status === 200)?.authorization ?? '')
    // The login: admitted, then given back once established; the object first touched by
    // establish, after the authority verified the user.
    expect(g.admissions()).toBe(1)
    expect(g.refunds()).toBe(1)
    expect(g.contextCalls).toEqual([{ name: handle, method: 'establish' }])
    expect(authority.calls).toBe(1)

    g.brakeCalls.length = 0
    g.contextCalls.length = 0
    for (let i = 1; i <= 20; i++) {
      expect((await alice.fetch(`/private/${i}`, { headers: ip })).status).toBe(200)
    }
    await g.settled()
    expect(authority.calls).toBe(1)
    expect(g.brakeCalls).toEqual([])
    // As before: one call to the context per request (replay mode window).
    expect(g.contextCalls).toEqual(Array(20).fill({ name: handle, method: 'verify' }))
    expect(origin.requests).toHaveLength(21)
  })

  it('replay mode off: once warm, later requests on the fresh nonce make no call at all', async () => {
    const g = recordingGate({ REPLAY_MODE: 'off' })
    const user = newUser('right')
    const ip = { 'cf-connecting-ip': newIp() }
    const alice = client(g.fetch, user, 'right')
    expect((await alice.fetch('/private/0', { headers: ip })).status).toBe(200)
    await g.settled()
    g.brakeCalls.length = 0
    g.contextCalls.length = 0
    for (let i = 1; i <= 20; i++) {
      expect((await alice.fetch(`/private/${i}`, { headers: ip })).status).toBe(200)
    }
    expect(g.contextCalls.map((c) => c.method)).toEqual(['verify'])
    expect(g.brakeCalls).toEqual([])
    expect(authority.calls).toBe(1)
  })

  it('8 parallel first requests of one context: 1 admission, 1 authority call', async () => {
    const g = recordingGate()
    const user = newUser('right')
    const ip = { 'cf-connecting-ip': newIp() }
    const challenge = challengeOf(await g.fetch(new Request(`${GATE}/private/c`, { headers: ip })))
    const headers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        authorization({ user, password: 'right', ...challenge, nc: i + 1, uri: '/private/c' })
      )
    )
    const statuses = (
      await Promise.all(
        headers.map((h) =>
          g.fetch(new Request(`${GATE}/private/c`, { headers: { ...ip, authorization: h } }))
        )
      )
    ).map((r) => r.status)
    await g.settled()
    expect(statuses).toEqual(Array(8).fill(200))
    expect(authority.calls).toBe(1)
    expect(g.admissions()).toBe(1)
    expect(g.refunds()).toBe(1)
    expect(origin.requests).toHaveLength(8)
  })

  it('a client that reaches a new isolate on its fresh nonce (nc=5): admitted, verified, given back', async () => {
    const first = recordingGate()
    const user = newUser('right')
    const ipText = newIp()
    const ip = { 'cf-connecting-ip': ipText }
    let send = first.fetch
    const alice = client((req) => send(req), user, 'right')
    for (let i = 1; i <= 4; i++) {
      expect((await alice.fetch(`/private/${i}`, { headers: ip })).status).toBe(200)
    }
    await first.settled()
    const handle = handleOf(alice.sent.find((s) => s.status === 200)?.authorization ?? '')
    const before = await brakeRows(ipText, user)
    const calls = authority.calls

    const second = recordingGate()
    send = second.fetch
    expect((await alice.fetch('/private/5', { headers: ip })).status).toBe(200)
    expect(/nc=0*5\b/.test(alice.sent.at(-1)?.authorization ?? '')).toBe(true)
    await second.settled()
    expect(second.admissions()).toBe(1)
    expect(second.refunds()).toBe(1)
    // The authority vouches for the user before the object is touched; then the context's cached
    // key verifies the request and records its nc (no new login: the context is the same).
    expect(authority.calls).toBe(calls + 1)
    expect(second.contextCalls).toEqual([{ name: handle, method: 'verify' }])
    // The brake counters end where they started.
    expect(await brakeRows(ipText, user)).toEqual(before)

    // This isolate knows the handle now: the next request is the hot path.
    second.brakeCalls.length = 0
    second.contextCalls.length = 0
    expect((await alice.fetch('/private/6', { headers: ip })).status).toBe(200)
    expect(second.brakeCalls).toEqual([])
    expect(second.contextCalls).toEqual([{ name: handle, method: 'verify' }])
    expect(authority.calls).toBe(calls + 1)
  })

  it('on a new isolate with revalidation due: the authority is asked once, and that revalidates', async () => {
    const first = recordingGate({ REVALIDATE_AFTER: '60' })
    const user = newUser('right')
    const ip = { 'cf-connecting-ip': newIp() }
    let send = first.fetch
    const alice = client((req) => send(req), user, 'right')
    expect((await alice.fetch('/private/1', { headers: ip })).status).toBe(200)
    await first.settled()
    vi.setSystemTime(Date.now() + 61_000)
    authority.users.set(user, { password: 'right', groups: ['promoted'] })

    const second = recordingGate({ REVALIDATE_AFTER: '60' })
    send = second.fetch
    const calls = authority.calls
    const res = await alice.fetch('/private/2', { headers: ip })
    expect(res.status).toBe(200)
    await second.settled()
    expect(authority.calls).toBe(calls + 1)
    expect(second.refunds()).toBe(1)
    expect(second.contextCalls.map((c) => c.method)).toEqual(['verify', 'revalidated'])
    // The groups the authority returned reached the origin, and the context keeps them.
    expect(origin.requests.at(-1)?.headers['x-auth-groups']).toBe('promoted')
    expect((await alice.fetch('/private/3', { headers: ip })).status).toBe(200)
    expect(authority.calls).toBe(calls + 1)
  })

  it('during an authority outage, a session reaching a new isolate is left to its context', async () => {
    const first = recordingGate()
    const user = newUser('right')
    const ipText = newIp()
    const ip = { 'cf-connecting-ip': ipText }
    let send = first.fetch
    const alice = client((req) => send(req), user, 'right')
    expect((await alice.fetch('/private/1', { headers: ip })).status).toBe(200)
    await first.settled()
    const before = await brakeRows(ipText, user)

    authority.mode = 'down'
    const second = recordingGate()
    send = second.fetch
    expect((await alice.fetch('/private/2', { headers: ip })).status).toBe(200)
    await second.settled()
    expect(second.admissions()).toBe(1)
    expect(second.refunds()).toBe(1)
    expect(second.contextCalls.map((c) => c.method)).toEqual(['verify'])
    expect(await brakeRows(ipText, user)).toEqual(before)

    // Strangers meanwhile: a first answer gets 503, touches nothing and is given back (a login
    // during the outage). A later nc is left to the context too: the price of keeping sessions up
    // is that, while the authority is down, such an answer reaches an object; finding none, it
    // gets 503 and stays counted, so strangers do so only at the brakes' rate.
    const stranger = recordingGate()
    const guess = (nc: number) =>
      answerChallenge(stranger.fetch, { user, password: 'guess', nc, ip: newIp() })
    const atFirst = await guess(1)
    expect(atFirst.status).toBe(503)
    expect(stranger.contextCalls).toEqual([])
    const later = await guess(2)
    expect(later.status).toBe(503)
    expect(stranger.contextCalls).toEqual([{ name: later.handle, method: 'verify' }])
    await stranger.settled()
    expect(stranger.admissions()).toBe(2)
    expect(stranger.refunds()).toBe(1)
  })

  it('a captured first request (nc=1) replayed after the login: refused, not given back, never forwarded', async () => {
    const g = recordingGate()
    const user = newUser('right')
    const ipText = newIp()
    const ip = { 'cf-connecting-ip': ipText }
    const alice = client(g.fetch, user, 'right')
    expect((await alice.fetch('/private/a', { headers: ip })).status).toBe(200)
    expect((await alice.fetch('/private/b', { headers: ip })).status).toBe(200)
    await g.settled()
    const captured = alice.sent.find((s) => s.status === 200)?.authorization ?? ''
    const forwarded = origin.requests.length

    // In the isolate that saw the login: the context refuses the used nc, no brake call.
    g.brakeCalls.length = 0
    const same = await g.fetch(
      new Request(`${GATE}/private/a`, { headers: { ...ip, authorization: captured } })
    )
    expect(same.status).toBe(401)
    expect(g.brakeCalls).toEqual([])

    // In a new isolate: braked first; the authority verifies it (the response is valid), and
    // establish refuses the used nc. The attempt stays counted.
    const other = recordingGate()
    const before = await brakeRows(ipText, user)
    const replayed = await other.fetch(
      new Request(`${GATE}/private/a`, { headers: { ...ip, authorization: captured } })
    )
    await other.settled()
    expect(replayed.status).toBe(401)
    expect(other.admissions()).toBe(1)
    expect(other.refunds()).toBe(0)
    const level = (rows: { level: number }[]) => rows.reduce((sum, r) => sum + r.level, 0)
    const after = await brakeRows(ipText, user)
    expect(level(after.bucket)).toBeGreaterThan(level(before.bucket))
    expect(level(after.user)).toBeGreaterThan(level(before.user))
    expect(origin.requests.length).toBe(forwarded)
    expect(other.contextCalls.map((c) => c.method)).toEqual(['establish'])
  })
})

describe('without brakes', () => {
  it('the context is asked first, as before: nothing can stop a stranger earlier', async () => {
    const g = recordingGate({ BRAKES: 'false' })
    const ip = newIp()
    const stranger = await answerChallenge(g.fetch, {
      user: newUser(),
      password: 'guess',
      nc: 1,
      ip,
    })
    expect(stranger.status).toBe(401)
    expect(g.contextCalls).toEqual([{ name: stranger.handle, method: 'verify' }])
    expect(g.brakeCalls).toEqual([])

    g.contextCalls.length = 0
    const user = newUser('right')
    const alice = client(g.fetch, user, 'right')
    expect((await alice.fetch('/private/1', { headers: { 'cf-connecting-ip': ip } })).status).toBe(
      200
    )
    expect(g.contextCalls.map((c) => c.method)).toEqual(['verify', 'establish'])
  })
})
