/**
 * Password guessing against the real gate (shared default gate, brakes as documented in
 * docs/brakes.md: BRAKE_USER_FAILURES 10 and BRAKE_CLIENT_FAILURES 50 per client, then growing
 * waits up to BRAKE_MAX_DELAY 60 s). The gate keys its brakes on CF-Connecting-IP, which
 * `wrangler dev` passes through as the client sent it: each test uses addresses of its own.
 *   - guessing one user's password: the guess after the threshold gets 429 + Retry-After, and no
 *     braked attempt reaches the authority; the real user on another client keeps working; the
 *     right password from the guessing client gets in after the announced wait (no lockout);
 *   - spraying guesses over many users from one client: that client is braked as a whole.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningWorker } from '../../scripts/stack/launcher.ts'
import { tailVerifications, workerLog } from './support/decisions.ts'
import { type Answer, digestSession } from './support/digest-session.ts'
import { startOwnGate } from './support/stack.ts'
import { ALICE, BOB } from './support/users.ts'

const USER_FAILURES = 10
const CLIENT_FAILURES = 50
const MAX_DELAY_SECONDS = 60

/** A gate of its own with the brakes as shipped (the shared gates relax them). */
let gateWithBrakes: RunningWorker
beforeAll(async () => {
  gateWithBrakes = await startOwnGate('gate-brakes')
})
afterAll(async () => {
  await gateWithBrakes?.stop()
})

/** One login attempt as a fresh client would make it: challenge, then credentials. */
function attempt(user: string, password: string, clientIp: string, path: string): Promise<Answer> {
  return digestSession(gateWithBrakes.url, user, password, { clientIp }).get(path)
}

function expectBraked(answer: Answer): void {
  expect(answer.status, answer.body).toBe(429)
  const retryAfter = Number(answer.headers.get('retry-after'))
  expect(retryAfter).toBeGreaterThan(0)
  expect(retryAfter).toBeLessThanOrEqual(MAX_DELAY_SECONDS)
  expect(JSON.parse(answer.body)).toMatchObject({ error: 'too_many_requests' })
}

describe('password guessing against one user', () => {
  const ATTACKER = '198.51.100.150'
  const OTHER_CLIENT = '198.51.100.151'

  it(`is braked (429) after ${USER_FAILURES} failures, while the real user keeps working`, async () => {
    const gate = gateWithBrakes.url
    // The real user, logged in on another client before the attack.
    const real = digestSession(gate, BOB.name, BOB.password, { clientIp: OTHER_CLIENT })
    expect((await real.get('/private/brakes/before')).status).toBe(200)

    const verifications = tailVerifications(workerLog('authority'))
    const statuses: number[] = []
    for (let i = 1; i <= USER_FAILURES; i++) {
      const answer = await attempt(BOB.name, `guess-${i}`, ATTACKER, `/private/brakes/${i}`)
      statuses.push(answer.status)
      // The real user, in the middle of it: the established session and a new login both work.
      if (i === USER_FAILURES / 2) {
        expect((await real.get(`/private/brakes/during/${i}`)).status).toBe(200)
        expect((await attempt(BOB.name, BOB.password, OTHER_CLIENT, '/private/b')).status).toBe(200)
      }
    }
    expect(statuses).toEqual(Array(USER_FAILURES).fill(401))

    // The counters drain steadily (10 per 15 min), so a guess or two past the threshold may still
    // pass before the waits begin; then every guess is braked, and so is the right password from
    // the guessing client, until the announced wait has passed: then it gets in (a slowed
    // guesser, never a locked-out user).
    let extra = 0
    let braked = await attempt(BOB.name, 'guess-next', ATTACKER, '/private/brakes/next')
    while (braked.status === 401 && extra < 2) {
      extra++
      braked = await attempt(BOB.name, `guess-next-${extra}`, ATTACKER, '/private/brakes/next')
    }
    expectBraked(braked)
    const right = await attempt(BOB.name, BOB.password, ATTACKER, '/private/brakes/right')
    expectBraked(right)
    await new Promise((r) => setTimeout(r, Number(right.headers.get('retry-after')) * 1000 + 200))
    expect((await attempt(BOB.name, BOB.password, ATTACKER, '/private/brakes/waited')).status).toBe(
      200
    )
    // Per user: another user on the same client is not braked.
    expect(
      (await attempt(ALICE.name, ALICE.password, ATTACKER, '/private/brakes/alice')).status
    ).toBe(200)

    // The real user still works, on its session and with a new login from its own client.
    expect((await real.get('/private/brakes/after')).status).toBe(200)
    expect(
      (await attempt(BOB.name, BOB.password, OTHER_CLIENT, '/private/brakes/relogin')).status
    ).toBe(200)

    // Only the ten guesses, the real user's new login during the attack, the right password
    // after the wait, alice's and the relogin reached the authority: braked attempts never did.
    const verified = await verifications.quiet()
    expect(verified.filter((v) => v.result === 'logon_denied')).toHaveLength(USER_FAILURES + extra)
    expect(verified.filter((v) => v.result === 'ok')).toHaveLength(1 + 1 + 1 + 1)
    console.log(
      `[brakes] ${USER_FAILURES} guesses → 401, then 429 (Retry-After ${braked.headers.get('retry-after')} s); ` +
        `${verified.length} authority calls in all`
    )
  }, 60_000)
})

describe('password spraying over many users from one client', () => {
  const SPRAYER = '198.51.100.160'

  it(`brakes the client as a whole after ${CLIENT_FAILURES} failures, other clients unaffected`, async () => {
    const statuses: number[] = []
    for (let i = 1; i <= CLIENT_FAILURES; i++) {
      // Never the same user twice: the per-user brake stays out of it.
      statuses.push((await attempt(`spray-${i}`, 'password1', SPRAYER, '/private/spray')).status)
    }
    expect(statuses).toEqual(Array(CLIENT_FAILURES).fill(401))
    // As above: the count drains meanwhile, so one or two more may pass before the waits begin.
    let next = await attempt('spray-next', 'password1', SPRAYER, '/private/spray')
    for (let i = 0; next.status === 401 && i < 2; i++) {
      next = await attempt(`spray-next-${i}`, 'password1', SPRAYER, '/private/spray')
    }
    expectBraked(next)
    expectBraked(await attempt(ALICE.name, ALICE.password, SPRAYER, '/private/spray'))
    expect((await attempt(ALICE.name, ALICE.password, '198.51.100.161', '/private/x')).status).toBe(
      200
    )
  }, 60_000)
})
