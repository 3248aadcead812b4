/**
 * Replays of captured requests across the events that end or reset a security context, on gates
 * of their own with short lifetimes (real time, real Durable Objects and alarms under
 * `wrangler dev`): after the context expired, after its idle timeout, after the user was revoked,
 * after a restart right after an out-of-order request, and for the RFC 2069 form (QOP=none).
 * A replay is refused (401), never forwarded, and never makes the gate ask the authority.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningWorker } from '../../scripts/stack/launcher.ts'
import { readDotenv } from '../../scripts/stack/secrets.ts'
import { e2e } from './support/context.ts'
import { tailDecisions, tailVerifications, workerLog } from './support/decisions.ts'
import { type DigestSession, digestSession, send } from './support/digest-session.ts'
import { startOwnGate } from './support/stack.ts'
import { ALICE, BOB } from './support/users.ts'

const CLIENT_IP = '198.51.100.60'
const REPLAYER_IP = '198.51.100.61'
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Sends every captured header again from the replayer: all refused; no authority call unless
 * `vouched` (replays on a fresh nonce in a process that has not seen its handle verified: the
 * brakes admit each, the authority verifies it, the context refuses it).
 */
async function expectRefused(
  gate: RunningWorker,
  name: string,
  captured: string[],
  path: string,
  vouched = 0
) {
  const verifications = tailVerifications(workerLog('authority'))
  const decisions = tailDecisions(workerLog(name))
  for (const authorization of captured) {
    const answer = await send(`${gate.url}${path}`, REPLAYER_IP, { headers: { authorization } })
    expect(answer.status, answer.body).toBe(401)
  }
  const records = await decisions.waitFor(captured.length)
  // The gate forwards only what it accepted: none of these was.
  expect(records.filter((r) => r.status === 200)).toEqual([])
  expect(await verifications.quiet()).toHaveLength(vouched)
}

/** A session of `n` requests to `path`; the headers it sent that were accepted. */
async function captureSession(gate: RunningWorker, user: typeof ALICE, n: number, path: string) {
  const session = digestSession(gate.url, user.name, user.password, { clientIp: CLIENT_IP })
  for (let i = 0; i < n; i++) expect((await session.get(path)).status).toBe(200)
  return { session, captured: [...session.sent] }
}

describe('replays across the end of a security context', () => {
  const NAME = 'gate-lifetimes'
  let gate: RunningWorker
  beforeAll(async () => {
    gate = await startOwnGate(NAME, { IDLE_TIMEOUT: '2', MAX_LIFETIME: '4', NONCE_LIFETIME: '300' })
  })
  afterAll(async () => {
    await gate?.stop()
  })

  it('after the idle timeout (its alarm has run)', async () => {
    const { captured } = await captureSession(gate, ALICE, 3, '/private/idle')
    await sleep(3500)
    await expectRefused(gate, NAME, captured, '/private/idle')
  })

  it('after the context reached its absolute lifetime', async () => {
    const session = digestSession(gate.url, BOB.name, BOB.password, { clientIp: CLIENT_IP })
    // Busy (never idle for 2 s) until its 4 s run out.
    for (let i = 0; i < 4; i++) {
      expect((await session.get('/private/life')).status).toBe(200)
      await sleep(1000)
    }
    const captured = [...session.sent]
    await sleep(1500)
    await expectRefused(gate, NAME, captured, '/private/life')
  })
})

describe('replays across a restart', () => {
  const NAME = 'gate-replay-restart'
  let gate: RunningWorker
  beforeAll(async () => {
    gate = await startOwnGate(NAME)
  })
  afterAll(async () => {
    await gate?.stop()
  })

  it('right after an out-of-order request that followed a quiet spell', async () => {
    const session = digestSession(gate.url, ALICE.name, ALICE.password, { clientIp: CLIENT_IP })
    expect((await session.get('/private/ooo')).status).toBe(200)
    const [h2, h3, , h5] = [
      await session.authorizationFor('GET', '/private/ooo'),
      await session.authorizationFor('GET', '/private/ooo'),
      await session.authorizationFor('GET', '/private/ooo'),
      await session.authorizationFor('GET', '/private/ooo'),
    ]
    const deliver = (h: string) =>
      send(`${gate.url}/private/ooo`, CLIENT_IP, { headers: { authorization: h } })
    expect((await deliver(h2 as string)).status).toBe(200)
    expect((await deliver(h5 as string)).status).toBe(200)
    await sleep(2500)
    expect((await deliver(h3 as string)).status).toBe(200)
    await gate.restart()
    await expectRefused(gate, NAME, [h3 as string], '/private/ooo', 1)
  })
})

describe('replays after revocation', () => {
  it('a revoked user’s captured requests are refused', async () => {
    const gate = e2e().gates.default
    const adminToken = readDotenv(e2e().secrets.gate).get('ADMIN_TOKEN') as string
    const session = digestSession(gate, BOB.name, BOB.password, { clientIp: CLIENT_IP })
    expect((await session.get('/private/revoke')).status).toBe(200)
    expect((await session.get('/private/revoke')).status).toBe(200)
    const captured = [...session.sent]
    const revoked = await fetch(`${gate}/.digest-gate/admin/users/digest-gate/bob/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}` },
    })
    expect(revoked.status).toBe(200)
    const verifications = tailVerifications(workerLog('authority'))
    for (const authorization of captured) {
      const answer = await send(`${gate}/private/revoke`, REPLAYER_IP, {
        headers: { authorization },
      })
      expect(answer.status).toBe(401)
    }
    expect(await verifications.quiet()).toEqual([])
  })
})

describe('replays of the RFC 2069 form (QOP=none)', () => {
  const NAME = 'gate-qop-none'
  let gate: RunningWorker
  let session: DigestSession
  beforeAll(async () => {
    gate = await startOwnGate(NAME, { QOP: 'none' })
    session = digestSession(gate.url, ALICE.name, ALICE.password, { clientIp: CLIENT_IP })
  })
  afterAll(async () => {
    await gate?.stop()
  })

  it('each nonce is used once; the client goes on with the nextnonce it is sent', async () => {
    for (let i = 0; i < 4; i++) {
      const answer = await session.get('/private/2069')
      expect(answer.status).toBe(200)
      expect(answer.headers.get('authentication-info')).toMatch(/nextnonce="/)
    }
    expect(new Set(session.sent.map((h) => /nonce="([^"]+)"/.exec(h)?.[1])).size).toBe(4)
    await expectRefused(gate, NAME, [...session.sent], '/private/2069')
  })
})
