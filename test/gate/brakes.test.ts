/**
 * The brakes against real Durable Objects, with the clock in the test's hands (Date is faked, and
 * the store takes `now`): through the gate with the in-test authority, and at the store, where
 * the same tests also run against the store in memory.
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { env, exports } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Brake } from '../../src/gate/brake.ts'
import {
  type BrakeAttempt,
  type BrakePolicy,
  type BrakeStore,
  type BrakeVerdict,
  DEFAULT_BRAKE_POLICY,
  maxAttempts,
} from '../../src/gate/brake-policy.ts'
import { durableObjectBrakes } from '../../src/gate/brake-store.ts'
import { ConfigError, readConfig } from '../../src/gate/config.ts'
import {
  MEMORY_MAX_COUNTERS,
  type MemoryBrakeStore,
  memoryBrakes,
} from '../../src/gate/memory-brakes.ts'
import type { buildGate } from '../../src/index.ts'
import {
  authorization,
  captureDecisions,
  challengeOf,
  client,
  type FakeAuthority,
  GATE,
  type GateFetch,
  installPeers,
  REALM,
  settlingGate,
} from './fakes.ts'
import { addressesIn, addUser, unique } from './support/fresh-names.ts'

let authority: FakeAuthority

beforeEach(() => {
  ;({ authority } = installPeers())
  // Date only: the gate and the objects read it, timers and I/O keep running.
  vi.useFakeTimers({ toFake: ['Date'] })
})
afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

const advance = (seconds: number) => vi.setSystemTime(Date.now() + seconds * 1000)
const nowSeconds = () => Math.floor(Date.now() / 1000)

const newIp = addressesIn('192.0.2')

const newUser = (password?: string) => addUser(authority, password)

/** The deployed gate (default configuration), as Cloudflare would call it. */
const viaGate: GateFetch = (req) => exports.default.fetch(req)

/**
 * A gate built on the test's own bindings: `brakeCalls` lists every brake object it asks for,
 * `settled()` waits for its background work (the brakes' refunds).
 */
function ownGate(vars: Record<string, string> = {}) {
  const brakeCalls: string[] = []
  // A class instance, not a plain object: configuration reads plain objects in env as JSON vars.
  class CountingNamespace {
    getByName(name: string) {
      brakeCalls.push(name)
      return env.BRAKE_COUNTERS.getByName(name)
    }
  }
  const brakes = new CountingNamespace() as unknown as DurableObjectNamespace<Brake>
  const e = { ...env, ...vars, BRAKE_COUNTERS: brakes } as Parameters<typeof buildGate>[0]
  const { fetch, settled } = settlingGate(e)
  return { fetch, brakeCalls, settled }
}

/** One initial authentication by hand: a challenge, then an answer to it. */
async function attempt(
  send: GateFetch,
  user: string,
  password: string,
  headers: Record<string, string>
): Promise<Response> {
  const challenge = challengeOf(await send(new Request(`${GATE}/private/x`, { headers })))
  const h = await authorization({ user, password, ...challenge, uri: '/private/x' })
  return send(new Request(`${GATE}/private/x`, { headers: { ...headers, authorization: h } }))
}

const retryAfter = (res: Response) => Number(res.headers.get('retry-after'))

describe('through the gate', () => {
  it('counts an attempt when admitted: of 40 parallel guesses only the limit reach the authority', async () => {
    const user = newUser()
    const ip = { 'cf-connecting-ip': newIp() }
    const challenges = await Promise.all(
      Array.from({ length: 40 }, async () =>
        challengeOf(await viaGate(new Request(`${GATE}/private/race`, { headers: ip })))
      )
    )
    const headers = await Promise.all(
      challenges.map((c, i) =>
        authorization({ user, password: `guess-${i}`, ...c, uri: '/private/race' })
      )
    )
    const answers = await Promise.all(
      headers.map((h) =>
        viaGate(new Request(`${GATE}/private/race`, { headers: { ...ip, authorization: h } }))
      )
    )
    const statuses = answers.map((r) => r.status)
    expect(authority.calls).toBe(DEFAULT_BRAKE_POLICY.userFailures)
    expect(statuses.filter((s) => s === 401)).toHaveLength(DEFAULT_BRAKE_POLICY.userFailures)
    expect(statuses.filter((s) => s === 429)).toHaveLength(40 - DEFAULT_BRAKE_POLICY.userFailures)
  })

  it('slows one address with growing waits, never a wall: after the wait the right password gets in', async () => {
    const user = newUser('right')
    const ip = { 'cf-connecting-ip': newIp() }
    const bob = client(viaGate, 'bob', 'builder')
    const guess = (i: number) => attempt(viaGate, user, `wrong-${i}`, ip)
    for (let i = 0; i < 10; i++) expect((await guess(i)).status).toBe(401)
    const waits: number[] = []
    for (let i = 0; i < 8; i++) {
      const braked = await guess(100 + i)
      expect(braked.status).toBe(429)
      waits.push(retryAfter(braked))
      advance(retryAfter(braked))
      expect((await guess(200 + i)).status).toBe(401)
    }
    expect(waits).toEqual([1, 2, 4, 8, 16, 32, 60, 60])
    // Refused attempts never reached the authority; other users were never slowed.
    expect(authority.calls).toBe(18)
    expect((await bob.fetch('/private/other')).status).toBe(200)
    // The typist's own client sends the right password: told to wait, then let in.
    const braked = await attempt(viaGate, user, 'right', ip)
    expect(braked.status).toBe(429)
    expect(retryAfter(braked)).toBeLessThanOrEqual(DEFAULT_BRAKE_POLICY.maxDelaySeconds)
    advance(retryAfter(braked))
    expect((await attempt(viaGate, user, 'right', ip)).status).toBe(200)
  })

  it('buckets IPv6 by /64, whatever the spelling', async () => {
    const user = newUser()
    const spellings = (i: number) =>
      [`2001:db8:b:1::${i.toString(16)}`, `2001:0DB8:000B:0001:0:0:0:${i.toString(16)}`][i % 2]
    for (let i = 1; i <= 10; i++) {
      const res = await attempt(viaGate, user, `guess-${i}`, {
        'cf-connecting-ip': spellings(i) ?? '',
      })
      expect(res.status).toBe(401)
    }
    const sameBlock = await attempt(viaGate, user, 'guess-11', {
      'cf-connecting-ip': '2001:db8:b:1:ffff:ffff:ffff:fffe',
    })
    expect(sameBlock.status).toBe(429)
    const otherBlock = await attempt(viaGate, user, 'guess-12', {
      'cf-connecting-ip': '2001:db8:b:2::1',
    })
    expect(otherBlock.status).toBe(401)
    expect(authority.calls).toBe(11)
  })

  it('keeps CF-Worker tenants of one shared address apart; a forged CF-Worker buys no guesses', async () => {
    const user = newUser('right')
    const shared = '2a06:98c0:3600::103'
    const tenant = (zone: string) => ({ 'cf-connecting-ip': shared, 'cf-worker': zone })
    for (let i = 0; i < 10; i++) {
      expect((await attempt(viaGate, user, `guess-${i}`, tenant('a.example'))).status).toBe(401)
    }
    expect((await attempt(viaGate, user, 'guess-x', tenant('a.example'))).status).toBe(429)
    // Another tenant, a direct client of that address, and a client elsewhere claiming to be
    // tenant A: none is braked by tenant A's guessing.
    expect((await attempt(viaGate, user, 'right', tenant('b.example'))).status).toBe(200)
    expect((await attempt(viaGate, user, 'right', { 'cf-connecting-ip': shared })).status).toBe(200)
    const elsewhere = { 'cf-connecting-ip': newIp(), 'cf-worker': 'a.example' }
    expect((await attempt(viaGate, user, 'right', elsewhere)).status).toBe(200)

    // One address forging a new CF-Worker per guess: the user's counter over all buckets holds.
    const victim = newUser()
    const forger = newIp()
    const decisions = captureDecisions()
    const statuses: number[] = []
    for (let i = 0; i < 25; i++) {
      const forged = { 'cf-connecting-ip': forger, 'cf-worker': `z${i}.example` }
      statuses.push((await attempt(viaGate, victim, `guess-${i}`, forged)).status)
    }
    const global = DEFAULT_BRAKE_POLICY.userGlobalFailures
    expect(statuses).toEqual([...Array(global).fill(401), ...Array(25 - global).fill(429)])
    expect(decisions.filter((d) => d.status === 429).map((d) => d.reason)).toEqual(
      Array(25 - global).fill('user_global_failures')
    )
  })

  it('slows a guesser spread over many addresses, while the user’s session works without the brakes', async () => {
    const g = ownGate()
    const user = newUser('right')
    const home = { 'cf-connecting-ip': newIp() }
    const session = client(g.fetch, user, 'right')
    expect((await session.fetch('/private/s/0', { headers: home })).status).toBe(200)
    await g.settled()

    const global = DEFAULT_BRAKE_POLICY.userGlobalFailures
    const statuses: number[] = []
    for (let i = 0; i < global + 5; i++) {
      const res = await attempt(g.fetch, user, `guess-${i}`, { 'cf-connecting-ip': newIp() })
      statuses.push(res.status)
    }
    expect(statuses).toEqual([...Array(global).fill(401), ...Array(5).fill(429)])

    // The established session: verified at the edge, not one brake object asked.
    g.brakeCalls.length = 0
    const calls = authority.calls
    for (let i = 1; i <= 5; i++) {
      expect((await session.fetch(`/private/s/${i}`, { headers: home })).status).toBe(200)
    }
    expect(g.brakeCalls).toEqual([])
    expect(authority.calls).toBe(calls)

    // A new login from the user's known address skips the counter over all addresses...
    const again = client(g.fetch, user, 'right')
    expect((await again.fetch('/private/again', { headers: home })).status).toBe(200)
    // ...one from a new address waits its turn, at most the announced wait.
    const away = { 'cf-connecting-ip': newIp() }
    const braked = await attempt(g.fetch, user, 'right', away)
    expect(braked.status).toBe(429)
    expect(retryAfter(braked)).toBeLessThanOrEqual(DEFAULT_BRAKE_POLICY.maxDelaySeconds)
    advance(retryAfter(braked))
    expect((await attempt(g.fetch, user, 'right', away)).status).toBe(200)

    // Revalidation (the cached key verified the request) asks the authority, not the brakes.
    await g.settled()
    g.brakeCalls.length = 0
    advance(DEFAULT_BRAKE_POLICY.windowSeconds)
    const before = authority.calls
    expect((await session.fetch('/private/s/late', { headers: home })).status).toBe(200)
    expect(authority.calls).toBe(before + 1)
    expect(g.brakeCalls).toEqual([])
  })

  it('counts unsupported_algorithm denials like wrong passwords', async () => {
    const user = newUser()
    const ip = { 'cf-connecting-ip': newIp() }
    let denials = 0
    vi.spyOn(authority, 'handle').mockImplementation(async () => {
      denials++
      return Response.json({ result: 'denied', reason: 'unsupported_algorithm' })
    })
    const statuses: number[] = []
    for (let i = 0; i < 12; i++) statuses.push((await attempt(viaGate, user, 'x', ip)).status)
    expect(statuses).toEqual([...Array(10).fill(401), 429, 429])
    expect(denials).toBe(10)
  })

  it('takes back attempts the authority could not decide (fault), and verified logins', async () => {
    const g = ownGate()
    const user = newUser('right')
    const ip = { 'cf-connecting-ip': newIp() }
    authority.mode = 'down'
    for (let i = 0; i < 15; i++) {
      expect((await attempt(g.fetch, user, 'right', ip)).status).toBe(503)
      await g.settled()
    }
    authority.mode = 'ok'
    for (let i = 0; i < 15; i++) {
      expect((await attempt(g.fetch, user, 'right', ip)).status).toBe(200)
      await g.settled()
    }
    // Nothing of the above was left counted: the full allowance of failures is still there.
    for (let i = 0; i < 10; i++) {
      expect((await attempt(g.fetch, user, `wrong-${i}`, ip)).status).toBe(401)
    }
    expect((await attempt(g.fetch, user, 'wrong-x', ip)).status).toBe(429)
  })
})

const policy = (p: Partial<BrakePolicy> = {}): BrakePolicy => ({ ...DEFAULT_BRAKE_POLICY, ...p })
const at = (bucket: string, user: string, now: number): BrakeAttempt => ({
  bucket,
  realm: REALM,
  user,
  now,
})
const bucketName = (bucket: string) => `bucket:${bucket}`
const userName = (user: string) => `user:${JSON.stringify([REALM, user])}`

/** What one brake object holds, the same whatever the store. */
interface Rows {
  counters: { key: string; level: number }[]
  budget: { count: number }[]
  known: { bucket: string }[]
}

const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : 1)

const objectRows = (stub: DurableObjectStub<Brake>): Promise<Rows> =>
  runInDurableObject(stub, (_: Brake, state) => ({
    counters: state.storage.sql
      .exec<{ key: string; level: number }>('SELECT key, level FROM counters')
      .toArray()
      .sort(byKey),
    budget: state.storage.sql.exec<{ count: number }>('SELECT count FROM budget').toArray(),
    known: state.storage.sql.exec<{ bucket: string }>('SELECT bucket FROM known').toArray(),
  }))

function memoryRows(store: MemoryBrakeStore, name: string): Rows {
  const { counters, budget, known } = store.inspect(name)
  return {
    counters: counters.map(({ key, level }) => ({ key, level })).sort(byKey),
    budget: budget ? [{ count: budget.count }] : [],
    known: known.map(({ bucket }) => ({ bucket })),
  }
}

const memory = memoryBrakes()
const stores: { kind: string; brakes: BrakeStore; rows: (name: string) => Promise<Rows> }[] = [
  {
    kind: 'Durable Objects',
    brakes: durableObjectBrakes(env.BRAKE_COUNTERS),
    rows: (name) => objectRows(env.BRAKE_COUNTERS.getByName(name)),
  },
  { kind: 'memory', brakes: memory, rows: async (name) => memoryRows(memory, name) },
]

describe.each(stores)('the store, $kind', ({ kind, brakes, rows }) => {
  it('admits exactly the threshold of parallel attempts', async () => {
    const [bucket, user, now] = [unique('b'), unique('u'), nowSeconds()]
    const verdicts = await Promise.all(
      Array.from({ length: 40 }, () => brakes.admit(at(bucket, user, now), policy()))
    )
    expect(verdicts.filter((v) => v.kind === 'admitted')).toHaveLength(10)
    expect(
      verdicts.filter((v) => v.kind === 'braked' && v.reason === 'user_failures')
    ).toHaveLength(30)
  })

  it('doubles the wait from 1 s to the cap, and waiting it always admits', async () => {
    const [bucket, user] = [unique('b'), unique('u')]
    let now = nowSeconds()
    const p = policy({ userFailures: 3, maxDelaySeconds: 20 })
    for (let i = 0; i < 3; i++)
      expect((await brakes.admit(at(bucket, user, now), p)).kind).toBe('admitted')
    const waits: number[] = []
    for (let i = 0; i < 8; i++) {
      const v = await brakes.admit(at(bucket, user, now), p)
      if (v.kind === 'admitted') throw new Error('admitted without waiting')
      waits.push(v.retryAfter)
      now += v.retryAfter
      expect((await brakes.admit(at(bucket, user, now), p)).kind).toBe('admitted')
    }
    expect(waits).toEqual([1, 2, 4, 8, 16, 20, 20, 20])
  })

  it('takes back a verified attempt, that one only: the history of failures stays', async () => {
    const [bucket, user] = [unique('b'), unique('u')]
    let now = nowSeconds()
    const p = policy()
    for (let i = 0; i < 10; i++) await brakes.admit(at(bucket, user, now), p)
    const wait = await brakes.admit(at(bucket, user, now), p)
    expect(wait.kind).toBe('braked')
    now += wait.kind === 'braked' ? wait.retryAfter : 0
    expect((await brakes.admit(at(bucket, user, now), p)).kind).toBe('admitted')
    await brakes.succeeded(at(bucket, user, now), p)
    // One more guess passes (the refund), the next is slowed again: no clean slate.
    expect((await brakes.admit(at(bucket, user, now), p)).kind).toBe('admitted')
    expect((await brakes.admit(at(bucket, user, now), p)).kind).toBe('braked')
  })

  it('takes back an undecided attempt but not its authority call', async () => {
    const [bucket, user] = [unique('b'), unique('u')]
    const now = nowSeconds()
    const p = policy({ authorityCallsPerMinute: 3 })
    for (let i = 0; i < 3; i++) {
      expect((await brakes.admit(at(bucket, user, now), p)).kind).toBe('admitted')
      await brakes.undecided(at(bucket, user, now), p)
    }
    expect(await rows(bucketName(bucket))).toEqual({
      counters: [],
      budget: [{ count: 3 }],
      known: [],
    })
    expect(await rows(userName(user))).toEqual({ counters: [], budget: [], known: [] })
    expect(await brakes.admit(at(bucket, user, now), p)).toEqual({
      kind: 'braked',
      retryAfter: 60,
      reason: 'authority_rate',
    })
  })

  it('when the user object refuses, the bucket takes back its count and its authority call', async () => {
    const [user, first, second] = [unique('u'), unique('b'), unique('b')]
    const now = nowSeconds()
    const p = policy({ userGlobalFailures: 2 })
    expect((await brakes.admit(at(first, user, now), p)).kind).toBe('admitted')
    expect((await brakes.admit(at(first, user, now), p)).kind).toBe('admitted')
    const refused = await brakes.admit(at(second, user, now), p)
    expect(refused).toEqual({ kind: 'braked', retryAfter: 1, reason: 'user_global_failures' })
    expect(await rows(bucketName(second))).toEqual({
      counters: [],
      budget: [{ count: 0 }],
      known: [],
    })
    // The first bucket's two attempts stay counted.
    expect((await rows(bucketName(first))).counters.map((c) => c.level)).toEqual([2, 2])
  })

  it('answers with the longest wait of all the counters it checks', async () => {
    const [user, other, bucket] = [unique('u'), unique('u'), unique('b')]
    const now = nowSeconds()
    const p = policy({ clientFailures: 3, userFailures: 1, authorityCallsPerMinute: 2 })
    expect((await brakes.admit(at(bucket, user, now), p)).kind).toBe('admitted')
    await brakes.recordFailure(at(bucket, user, now), p)
    await brakes.recordFailure(at(bucket, other, now), p)
    // The bucket is at its threshold (1 s), the user one beyond it (2 s).
    expect(await brakes.admit(at(bucket, user, now), p)).toEqual({
      kind: 'braked',
      retryAfter: 2,
      reason: 'user_failures',
    })
    expect(await brakes.admit(at(bucket, unique('u'), now), p)).toEqual({
      kind: 'braked',
      retryAfter: 1,
      reason: 'client_failures',
    })
    expect((await brakes.admit(at(bucket, unique('u'), now + 1), p)).kind).toBe('admitted')
    // Two authority calls this minute: the budget is spent until the minute is over.
    expect(await brakes.admit(at(bucket, unique('u'), now + 30), p)).toEqual({
      kind: 'braked',
      retryAfter: 30,
      reason: 'authority_rate',
    })
  })

  it('lets a known bucket past the counter over all buckets, still counting it', async () => {
    const [user, home, guesser] = [unique('u'), unique('b'), unique('b')]
    const now = nowSeconds()
    const p = policy({ userGlobalFailures: 2 })
    expect((await brakes.admit(at(home, user, now), p)).kind).toBe('admitted')
    await brakes.succeeded(at(home, user, now), p)
    expect((await brakes.admit(at(guesser, user, now), p)).kind).toBe('admitted')
    expect((await brakes.admit(at(guesser, user, now), p)).kind).toBe('admitted')
    expect((await brakes.admit(at(guesser, user, now), p)).kind).toBe('braked')
    expect((await brakes.admit(at(home, user, now), p)).kind).toBe('admitted')
    expect((await rows(userName(user))).counters).toEqual([{ key: '*', level: 3 }])
    expect((await rows(userName(user))).known).toEqual([{ bucket: home }])
  })

  it('keeps the 16 most recently confirmed known buckets of a user', async () => {
    const user = unique('u')
    const now = nowSeconds()
    const homes = Array.from({ length: 18 }, (_, i) => `${unique('b')}-${i}`)
    for (const [i, home] of homes.entries()) {
      expect((await brakes.admit(at(home, user, now + i), policy())).kind).toBe('admitted')
      await brakes.succeeded(at(home, user, now + i), policy())
    }
    const known = (await rows(userName(user))).known.map((k) => k.bucket)
    expect(known.sort()).toEqual(homes.slice(2).sort())
  })

  it('counts failures decided at the edge in all counters, and says what comes next', async () => {
    const [user, bucket] = [unique('u'), unique('b')]
    const now = nowSeconds()
    const p = policy({ userFailures: 2 })
    const verdicts: BrakeVerdict[] = []
    for (let i = 0; i < 3; i++) verdicts.push(await brakes.recordFailure(at(bucket, user, now), p))
    expect(verdicts).toEqual([
      { kind: 'admitted' },
      { kind: 'braked', retryAfter: 1, reason: 'user_failures' },
      { kind: 'braked', retryAfter: 2, reason: 'user_failures' },
    ])
    expect((await brakes.admit(at(bucket, user, now + 1), p)).kind).toBe('braked')
    expect((await rows(userName(user))).counters).toEqual([{ key: '*', level: 3 }])
  })

  it('holds a guesser to the documented rate, from one bucket or from a new bucket each time', async () => {
    const seconds = 3600
    /** Greedy: try at once, and again exactly when told; answers how many got through. */
    const greedy = async (bucket: () => string, p: BrakePolicy) => {
      const user = unique('u')
      const start = nowSeconds()
      let now = start
      let admitted = 0
      while (now < start + seconds) {
        const v = await brakes.admit(at(bucket(), user, now), p)
        if (v.kind === 'admitted') admitted++
        else now += v.retryAfter
      }
      return admitted
    }
    // One bucket (the counter over all buckets set aside): the bucket+user counter holds it.
    const alone = policy({ userGlobalFailures: 10_000 })
    const oneBucket = unique('b')
    const fromOne = await greedy(() => oneBucket, alone)
    expect(fromOne).toBeLessThanOrEqual(maxAttempts(alone.userFailures, alone, seconds))
    // A new bucket for every guess: the user's counter over all buckets holds it.
    const fromMany = await greedy(() => unique('b'), policy())
    expect(fromMany).toBeLessThanOrEqual(
      maxAttempts(DEFAULT_BRAKE_POLICY.userGlobalFailures, policy(), seconds)
    )
    // Slowed, not walled: at least one guess per longest wait still gets through.
    for (const n of [fromOne, fromMany]) {
      expect(n).toBeGreaterThanOrEqual(seconds / DEFAULT_BRAKE_POLICY.maxDelaySeconds)
    }
    console.info(
      `[brakes, ${kind}] greedy guesser over 1 h: ${fromOne} from one bucket, ${fromMany} from a new bucket each time`
    )
  }, 30_000)
})

describe('the store, Durable Objects only', () => {
  const brakes = durableObjectBrakes(env.BRAKE_COUNTERS)
  const bucketObject = (bucket: string) => env.BRAKE_COUNTERS.getByName(bucketName(bucket))
  const userObject = (user: string) => env.BRAKE_COUNTERS.getByName(userName(user))

  it('sweeps what has drained, and empties an object once nothing is left', async () => {
    const [user, bucket] = [unique('u'), unique('b')]
    const now = nowSeconds()
    const p = policy()
    await brakes.admit(at(bucket, user, now), p)
    await brakes.admit(at(bucket, user, now), p)
    await brakes.succeeded(at(bucket, user, now), p)
    const stub = bucketObject(bucket)
    expect(await runInDurableObject(stub, (_: Brake, s) => s.storage.getAlarm())).not.toBeNull()
    // One attempt left in each counter: the bucket's drains in windowSeconds / clientFailures
    // (18 s), the user's in windowSeconds / userFailures (90 s); the budget after a minute.
    await runInDurableObject(stub, (b: Brake) => b.sweep(now + 17))
    expect(await objectRows(stub)).toMatchObject({
      counters: { length: 2 },
      budget: [{ count: 2 }],
    })
    await runInDurableObject(stub, (b: Brake) => b.sweep(now + 18))
    expect((await objectRows(stub)).counters.map((c) => c.key)).toEqual([
      JSON.stringify([REALM, user]),
    ])
    await runInDurableObject(stub, (b: Brake) => b.sweep(now + 89))
    expect(await objectRows(stub)).toMatchObject({ counters: { length: 1 }, budget: [] })
    await runInDurableObject(stub, (b: Brake) => b.sweep(now + 90))
    expect(await objectRows(stub)).toEqual({ counters: [], budget: [], known: [] })
    expect(await runInDurableObject(stub, (_: Brake, s) => s.storage.getAlarm())).toBeNull()

    // The user object keeps its known bucket for knownClientSeconds; its alarm then empties it.
    const userStub = userObject(user)
    expect((await objectRows(userStub)).known).toEqual([{ bucket }])
    advance(p.knownClientSeconds + 1)
    expect(await runDurableObjectAlarm(userStub)).toBe(true)
    expect(await objectRows(userStub)).toEqual({ counters: [], budget: [], known: [] })
    expect(await runInDurableObject(userStub, (_: Brake, s) => s.storage.getAlarm())).toBeNull()
  })

  it('keeps at most 512 counters in one object, the bucket’s own always among them', async () => {
    const stub = bucketObject(unique('b'))
    const now = nowSeconds()
    await runInDurableObject(stub, (b: Brake) => {
      for (let i = 0; i < 600; i++)
        b.failFromBucket(JSON.stringify([REALM, `n${i}`]), now + i, policy())
    })
    const { counters } = await objectRows(stub)
    expect(counters).toHaveLength(512)
    expect(counters.some((c) => c.key === '*')).toBe(true)
    // The newest survive; the oldest (closest to draining) went first.
    expect(counters.some((c) => c.key === JSON.stringify([REALM, 'n599']))).toBe(true)
    expect(counters.some((c) => c.key === JSON.stringify([REALM, 'n0']))).toBe(false)
  })
})

describe('the store, memory only', () => {
  it(`keeps at most ${MEMORY_MAX_COUNTERS} counters in one object, the bucket’s own always among them`, async () => {
    const store = memoryBrakes()
    const [bucket, now] = [unique('b'), nowSeconds()]
    // Far from draining, so the sweeps on the way delete nothing.
    const p = policy({ windowSeconds: 1_000_000 })
    for (let i = 0; i < 600; i++) await store.recordFailure(at(bucket, `n${i}`, now + i), p)
    const { counters } = memoryRows(store, bucketName(bucket))
    expect(counters).toHaveLength(MEMORY_MAX_COUNTERS)
    expect(counters.some((c) => c.key === '*')).toBe(true)
    expect(counters.some((c) => c.key === JSON.stringify([REALM, 'n599']))).toBe(true)
    expect(counters.some((c) => c.key === JSON.stringify([REALM, 'n0']))).toBe(false)
  })

  it('sweeps drained objects lazily, at most once a minute, on the next call', async () => {
    const store = memoryBrakes()
    const [user, bucket] = [unique('u'), unique('b')]
    const now = nowSeconds()
    const p = policy()
    await store.admit(at(bucket, user, now), p)
    await store.admit(at(bucket, user, now), p)
    await store.succeeded(at(bucket, user, now), p)
    expect(store.size).toBe(2)
    // 30 s on, the bucket's own counter has drained (18 s), but the last sweep was under a minute
    // ago: nothing is swept yet. The call's own objects are new.
    await store.recordFailure(at(unique('b'), unique('u'), now + 30), p)
    expect(store.size).toBe(4)
    expect(memoryRows(store, bucketName(bucket)).counters).toHaveLength(2)
    // 130 s on, that call sweeps first. The bucket object has drained entirely (its counters by
    // 18 s and 90 s, its budget by 60 s) and is gone, and so are the objects of the call at 30 s
    // (by 120 s); the user object stays for its known bucket.
    await store.recordFailure(at(unique('b'), unique('u'), now + 130), p)
    expect(store.size).toBe(3)
    expect(memoryRows(store, bucketName(bucket))).toEqual({ counters: [], budget: [], known: [] })
    expect(memoryRows(store, userName(user))).toEqual({
      counters: [],
      budget: [],
      known: [{ bucket }],
    })
    // Objects looked up and left empty (a refund of nothing) do not linger either.
    await store.undecided(at(unique('b'), unique('u'), now + 131), p)
    expect(store.size).toBe(5)
    await store.recordFailure(at(unique('b'), unique('u'), now + 300), p)
    expect(store.size).toBe(3)
    // The known bucket expires with its time, then the user object goes too.
    await store.recordFailure(at(unique('b'), unique('u'), now + p.knownClientSeconds + 1), p)
    expect(memoryRows(store, userName(user)).known).toEqual([])
    expect(store.size).toBe(2)
  })

  it('holds at most maxObjects, evicting the object that would be empty soonest', async () => {
    const store = memoryBrakes({ maxObjects: 6 })
    const [victim, home] = [unique('u'), unique('b')]
    const now = nowSeconds()
    const p = policy({ userFailures: 3, userGlobalFailures: 3 })
    // A guesser drives the victim's counters from one bucket past the threshold: they drain
    // in 1200 s.
    for (let i = 0; i < 4; i++) await store.recordFailure(at(home, victim, now), p)
    expect(await store.admit(at(home, victim, now), p)).toMatchObject({ kind: 'braked' })
    // Then sprays fresh buckets and names: one attempt each, drained within 300 s.
    let peak = 0
    for (let i = 0; i < 20; i++) {
      await store.recordFailure(at(unique('b'), unique('u'), now + 1), p)
      peak = Math.max(peak, store.size)
    }
    expect(peak).toBe(6)
    // The victim's counters, fullest, were never evicted: still braked.
    expect(memoryRows(store, bucketName(home)).counters).toHaveLength(2)
    expect(memoryRows(store, userName(victim)).counters).toEqual([{ key: '*', level: 4 }])
    expect(await store.admit(at(home, victim, now + 1), p)).toMatchObject({ kind: 'braked' })
  })

  it('forgets counts when it must evict them: their guesser starts afresh', async () => {
    const store = memoryBrakes({ maxObjects: 2 })
    const [user, bucket] = [unique('u'), unique('b')]
    const now = nowSeconds()
    const p = policy({ userFailures: 1, userGlobalFailures: 1 })
    await store.recordFailure(at(bucket, user, now), p)
    expect((await store.admit(at(bucket, user, now), p)).kind).toBe('braked')
    // Another user from another bucket: both objects of the first attempt are evicted.
    await store.recordFailure(at(unique('b'), unique('u'), now), p)
    expect(store.size).toBe(2)
    expect((await store.admit(at(bucket, user, now), p)).kind).toBe('admitted')
  })

  it.each([0, 1, 2.5, Number.NaN])('refuses maxObjects %s', (maxObjects) => {
    expect(() => memoryBrakes({ maxObjects })).toThrow(RangeError)
  })
})

describe('configuration', () => {
  const base = {
    REALM: 'r',
    ORIGIN_URL: 'https://origin.test',
    AUTHORITY_URL: 'https://authority.test/v1/verify',
    NONCE_KEY: 'k'.repeat(32),
    AUTHORITY_TOKEN: 't',
  }

  it('reads the BRAKE_* variables, with the documented defaults', () => {
    // Unset variables leave the policy to its defaults (the one table: DEFAULTS.brakePolicy).
    expect(readConfig(base, false).brakes).toEqual({ policy: {} })
    expect(DEFAULT_BRAKE_POLICY).toEqual({
      userFailures: 10,
      clientFailures: 50,
      userGlobalFailures: 20,
      windowSeconds: 900,
      maxDelaySeconds: 60,
      authorityCallsPerMinute: 60,
      knownClientSeconds: 30 * 86_400,
    })
    const c = readConfig(
      {
        ...base,
        BRAKE_USER_FAILURES: '3',
        BRAKE_CLIENT_FAILURES: '4',
        BRAKE_USER_GLOBAL_FAILURES: '5',
        BRAKE_WINDOW: '6',
        BRAKE_MAX_DELAY: '7',
        BRAKE_AUTHORITY_PER_MINUTE: '8',
        BRAKE_KNOWN_CLIENT_DAYS: '0',
      },
      false
    )
    expect(c.brakes).toEqual({
      policy: {
        userFailures: 3,
        clientFailures: 4,
        userGlobalFailures: 5,
        windowSeconds: 6,
        maxDelaySeconds: 7,
        authorityCallsPerMinute: 8,
        knownClientSeconds: 0,
      },
    })
  })

  it.each([
    'BRAKE_USER_FAILURES',
    'BRAKE_CLIENT_FAILURES',
    'BRAKE_USER_GLOBAL_FAILURES',
    'BRAKE_WINDOW',
    'BRAKE_MAX_DELAY',
    'BRAKE_AUTHORITY_PER_MINUTE',
    'BRAKE_KNOWN_CLIENT_DAYS',
  ])('refuses a bad %s by name', (name) => {
    expect(() => readConfig({ ...base, [name]: '-1' }, false)).toThrow(ConfigError)
    expect(() => readConfig({ ...base, [name]: '-1' }, false)).toThrow(name)
  })
})
