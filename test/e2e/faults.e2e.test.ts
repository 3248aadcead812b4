/**
 * Faults of the real stack (SEC_E_NO_AUTHENTICATING_AUTHORITY in docs/architecture.md):
 *   - an authority that is slow (10 s, beyond AUTHORITY_TIMEOUT_MS), answers 500, answers garbage,
 *     or drops connections (a controllable authority, support/fake-authority.ts, in front of the
 *     real one): established sessions keep getting 200 without asking it; new logins get
 *     503 + Retry-After; never a 500;
 *   - the real authority process stopped mid-run (a stack of its own), then started again;
 *   - the gate restarted mid-session on its persist directory: sessions continue, verified by
 *     their contexts, and the nc records survive (a pre-restart request replayed is refused). A
 *     session still on its first (fresh) nonce costs one authority call in the new process: its
 *     handle is not known there, so the authority vouches for the user before the object is called.

 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningWorker } from '../../scripts/stack/launcher.ts'
import type { Stack } from '../../scripts/stack/stack.ts'
import { verifyTotal } from './support/authority-metrics.ts'
import { e2e } from './support/context.ts'
import { tailDecisions, tailVerifications, workerLog } from './support/decisions.ts'
import { type Answer, type DigestSession, digestSession, send } from './support/digest-session.ts'
import { FAULT_MODES, type FakeAuthority, startFakeAuthority } from './support/fake-authority.ts'
import { startOwnGate, startOwnStack } from './support/stack.ts'
import { ALICE, BOB } from './support/users.ts'

/** The gate's default AUTHORITY_TIMEOUT_MS (src/gate/config.ts). */
const AUTHORITY_TIMEOUT_MS = 5000

/** Every status any request of this file got: a 500 must never appear. */
const seen: number[] = []

function note(answer: Answer): Answer {
  seen.push(answer.status)
  return answer
}

let nextIp = 1
/** A new client address per new login: the brakes' per-minute budget stays out of the way. */
const newClientIp = () => `198.51.100.${100 + nextIp++}`

function expectServiceUnavailable(answer: Answer): void {
  expect(answer.status, answer.body).toBe(503)
  const retryAfter = Number(answer.headers.get('retry-after'))
  expect(Number.isInteger(retryAfter) && retryAfter > 0).toBe(true)
  expect(JSON.parse(answer.body)).toMatchObject({ error: 'authority_unavailable' })
}

/** Sessions keep working: `rounds` requests each, all 200. */
async function expectSessionsWork(sessions: DigestSession[], path: string, rounds = 2) {
  for (let round = 0; round < rounds; round++) {
    for (const session of sessions) {
      const answer = note(await session.get(`${path}/${round}`))
      expect(answer.status, `${session.user}: ${answer.body}`).toBe(200)
    }
  }
}

afterAll(() => {
  expect(seen.filter((status) => status === 500 || status > 503)).toEqual([])
})

describe('authority faults: established sessions keep working, new logins get 503', () => {
  let fake: FakeAuthority
  let gate: RunningWorker
  let sessions: DigestSession[]

  beforeAll(async () => {
    fake = await startFakeAuthority(e2e().authorityUrl, { slowMs: 10_000 })
    gate = await startOwnGate('gate-faults', { AUTHORITY_URL: `${fake.url}/v1/verify` })
    sessions = [
      digestSession(gate.url, ALICE.name, ALICE.password, { clientIp: '198.51.100.10' }),
      digestSession(gate.url, BOB.name, BOB.password, {
        clientIp: '198.51.100.11',
        algorithm: 'MD5',
      }),
    ]
    await expectSessionsWork(sessions, '/private/before', 1)
    expect(fake.calls).toBe(2)
  })
  afterAll(async () => {
    await gate?.stop()
    await fake?.close()
  })

  for (const mode of FAULT_MODES) {
    it(`${mode}: sessions 200 without the authority; a new login 503 + Retry-After`, async () => {
      fake.mode = mode
      const decisions = tailDecisions(workerLog('gate-faults'))
      const calls = fake.calls
      await expectSessionsWork(sessions, `/private/${mode}`)
      expect(fake.calls).toBe(calls)

      const login = digestSession(gate.url, ALICE.name, ALICE.password, {
        clientIp: newClientIp(),
      })
      const started = Date.now()
      // While the login waits for the authority, established sessions are not held up.
      const [answer, during] = await Promise.all([
        login.get(`/private/${mode}/login`),
        (async () => {
          const latencies: number[] = []
          for (const session of sessions) {
            const t = Date.now()
            expect(note(await session.get(`/private/${mode}/during`)).status).toBe(200)
            latencies.push(Date.now() - t)
          }
          return latencies
        })(),
      ])
      const elapsed = Date.now() - started
      note(answer)
      expectServiceUnavailable(answer)
      // One attempt, never retried (a verification is not idempotent for the brakes).
      expect(fake.calls).toBe(calls + 1)
      if (mode === 'slow') {
        // The gate gave up at its own timeout, well before the authority's 10 s.
        expect(elapsed).toBeGreaterThanOrEqual(AUTHORITY_TIMEOUT_MS - 100)
        expect(elapsed).toBeLessThan(9000)
        for (const latency of during) expect(latency).toBeLessThan(3000)
      }
      await expectSessionsWork(sessions, `/private/${mode}/after`, 1)

      // Sessions 2 × 2, the login (challenge, 503), during 2, after 2.
      const records = await decisions.waitFor(10)
      const refused = records.filter((r) => r.status === 503)
      expect(refused).toHaveLength(1)
      expect(refused[0]?.reason).toMatch(/^authority_/)
      // Every other decision verified at the edge, with no authority call.
      const others = records.filter((r) => r.status !== 503 && r.status !== 401)
      expect(others).toHaveLength(8)
      expect(others.every((r) => r.outcome === 'verified_at_edge' && !r.authorityCalled)).toBe(true)
      console.log(
        `[faults] ${mode}: login ${answer.status} (${refused[0]?.reason}) in ${elapsed} ms`
      )
    }, 30_000)
  }

  it('once the authority is back, new logins succeed again', async () => {
    fake.mode = 'ok'
    const login = digestSession(gate.url, BOB.name, BOB.password, { clientIp: newClientIp() })
    expect(note(await login.get('/private/recovered')).status).toBe(200)
    await expectSessionsWork(sessions, '/private/recovered', 1)
  })
})

describe('the real authority process stopped mid-run, then started again', () => {
  let stack: Stack
  let sessions: DigestSession[]

  beforeAll(async () => {
    stack = await startOwnStack('stack-faults')
    sessions = [
      digestSession(stack.urls.gate, ALICE.name, ALICE.password, { clientIp: '198.51.100.20' }),
      digestSession(stack.urls.gate, BOB.name, BOB.password, {
        clientIp: '198.51.100.21',
        algorithm: 'MD5',
      }),
    ]
    await expectSessionsWork(sessions, '/private/before', 1)
  }, 120_000)
  afterAll(async () => {
    await stack?.stop()
  })

  it('sessions never notice; new logins get 503 + Retry-After; then 200 again', async () => {
    // Sessions send requests continuously while the authority goes down under them.
    let running = true
    const statuses: number[] = []
    const load = Promise.all(
      sessions.map(async (session) => {
        for (let i = 0; running; i++) {
          statuses.push(note(await session.get(`/private/load/${i}`)).status)
        }
      })
    )
    await new Promise((resolve) => setTimeout(resolve, 500))
    await stack.authority.stop()
    await expect(fetch(`${stack.urls.authority}/healthz`)).rejects.toThrow()
    const stoppedAt = statuses.length

    const login = digestSession(stack.urls.gate, ALICE.name, ALICE.password, {
      clientIp: newClientIp(),
    })
    expectServiceUnavailable(note(await login.get('/private/while-down')))
    await new Promise((resolve) => setTimeout(resolve, 500))
    running = false
    await load
    console.log(
      `[faults] authority stopped: ${statuses.length} session requests (${statuses.length - stoppedAt} after the stop)`
    )
    expect(statuses.length - stoppedAt).toBeGreaterThan(0)
    expect(statuses.filter((s) => s !== 200)).toEqual([])

    await stack.authority.restart()
    // The same client retries the login, as Retry-After told it to.
    expect(note(await login.get('/private/back')).status).toBe(200)
    await expectSessionsWork(sessions, '/private/back', 1)
  }, 90_000)
})

describe('the gate restarted mid-session on its persist directory', () => {
  let gate: RunningWorker

  beforeAll(async () => {
    gate = await startOwnGate('gate-restart')
  })
  afterAll(async () => {
    await gate?.stop()
  })

  it('sessions continue with 200, one authority call each on their fresh nonce; nc records survive', async () => {
    const sessions = [
      digestSession(gate.url, ALICE.name, ALICE.password, { clientIp: '198.51.100.30' }),
      digestSession(gate.url, BOB.name, BOB.password, {
        clientIp: '198.51.100.31',
        algorithm: 'MD5',
      }),
    ]
    await expectSessionsWork(sessions, '/private/before', 2)
    // A request captured before the restart, delivered once.
    const alice = sessions[0] as DigestSession
    const captured = await alice.authorizationFor('GET', '/private/captured')
    const clientIp = '198.51.100.32'
    const first = await send(`${gate.url}/private/captured`, clientIp, {
      headers: { authorization: captured },
    })
    expect(first.status).toBe(200)

    const verifications = tailVerifications(workerLog('authority'))
    const metricsBefore = await verifyTotal(e2e().authorityUrl)
    // A quiet spell first: the context objects then write their exact nc state (after 2 s), so
    // the sessions carry on without even a stale round trip. (Killed mid-burst, each session would
    // get one stale=true, silently retried; the gate tests cover that case.)
    await new Promise((resolve) => setTimeout(resolve, 2500))
    const pid = gate.process().pid
    await gate.restart()
    expect(gate.process().pid).not.toBe(pid)
    const decisions = tailDecisions(workerLog('gate-restart'))

    await expectSessionsWork(sessions, '/private/after', 3)
    const replay = note(
      await send(`${gate.url}/private/captured`, clientIp, { headers: { authorization: captured } })
    )
    expect(replay.status).toBe(401)
    expect(replay.headers.get('www-authenticate')).toMatch(/stale=true/)

    const records = await decisions.waitFor(2 * 3 + 1)
    expect(records.slice(0, 6).map((r) => r.outcome)).toEqual(Array(6).fill('verified_at_edge'))
    // The first request of each session in the new process: admitted, vouched for by the
    // authority, then verified by its context; the later ones by the context alone.
    expect(records.slice(0, 6).map((r) => r.authorityCalled)).toEqual([
      true,
      true,
      false,
      false,
      false,
      false,
    ])
    expect(records.find((r) => r.reason === 'nc_replay')).toBeDefined()
    expect((await verifications.quiet()).map((v) => v.result)).toEqual(['ok', 'ok'])
    // A live reload of the authority resets its counters: they may drop, never rise beyond those.
    expect((await verifyTotal(e2e().authorityUrl)) - metricsBefore).toBeLessThanOrEqual(2)
  }, 90_000)
})
