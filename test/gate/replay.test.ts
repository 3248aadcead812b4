/**
 * A captured request is never forwarded twice (replay modes window and strict), whatever happens
 * to its security context: expiry, idle timeout, revocation, a new login on the same handle,
 * eviction right after an out-of-order request, a restart. And the RFC 2069 form (no qop, no nc)
 * makes each nonce single-use. Every test asserts on what the origin received.
 */
import {
  evictDurableObject,
  listDurableObjectIds,
  runDurableObjectAlarm,
  runInDurableObject,
} from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { readNonceFields } from '../../src/digest/tokens.ts'
import type { SecurityContext } from '../../src/gate/security-context.ts'
import {
  client,
  type FakeAuthority,
  type FakeOrigin,
  GATE,
  type GateFetch,
  gate,
  installPeers,
} from './fakes.ts'
import { type FakeClock, fakeClock, holdTimers, quietSpell } from './support/clock.ts'

let authority: FakeAuthority
let origin: FakeOrigin
let clock: FakeClock

beforeEach(() => {
  ;({ authority, origin } = installPeers())
  clock = fakeClock()
  // The objects' quiet-spell timers never fire on their own: an eviction then costs no wait.
  holdTimers()
})
afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

const ADMIN = { authorization: 'Bearer test-admin-token-0123456789abcdef0123' }

/** The handle (context object name) a Digest header's nonce names. */
function handleOf(authorization: string): string {
  const nonce = /nonce="([^"]+)"/.exec(authorization)?.[1] ?? ''
  return readNonceFields(nonce)?.handle ?? ''
}

async function runAlarm(handle: string): Promise<void> {
  await runDurableObjectAlarm(env.CONTEXTS.getByName(handle))
}

async function evict(handle: string): Promise<void> {
  await evictDurableObject(env.CONTEXTS.getByName(handle)).catch(() => {})
}

/** Alice's session of `n` requests; every header she sent, in order (the first answers the 401). */
async function session(g: GateFetch, n: number, prefix: string) {
  const alice = client(g, 'alice', 'wonderland')
  for (let i = 1; i <= n; i++) expect((await alice.fetch(`${prefix}/${i}`)).status).toBe(200)
  const captured = alice.sent.filter((s) => s.status === 200).map((s) => s.authorization ?? '')
  return { alice, captured, handle: handleOf(captured[0] ?? '') }
}

/** Send captured headers again from elsewhere: none may reach the origin. */
async function replayAll(g: GateFetch, captured: string[], prefix: string) {
  const before = origin.requests.length
  const statuses: number[] = []
  for (const [i, authorization] of captured.entries()) {
    const res = await g(
      new Request(`${GATE}${prefix}/${i + 1}`, {
        headers: { authorization, 'cf-connecting-ip': '203.0.113.99' },
      })
    )
    statuses.push(res.status)
  }
  expect(origin.requests.length - before).toBe(0)
  return statuses
}

for (const mode of ['window', 'strict'] as const) {
  describe(`replay mode ${mode}: a captured request is never forwarded twice`, () => {
    it('after the context reached MAX_LIFETIME and its alarm ran', async () => {
      const g = gate({ REPLAY_MODE: mode, MAX_LIFETIME: '60', NONCE_LIFETIME: '300' })
      const { captured, handle } = await session(g, 2, '/private/life')
      // Long after the last request: the quiet-spell flush has run, then the alarm.
      await quietSpell(clock, env.CONTEXTS.getByName(handle), 61)
      await runAlarm(handle)
      // What the alarm kept must come back from storage, not from the object's memory.
      await evict(handle)
      const calls = authority.calls
      expect(await replayAll(g, captured, '/private/life')).toEqual([401, 401])
      // Refused from the kept nc state alone: the authority is not asked about a replay.
      expect(authority.calls).toBe(calls)
    })

    it('after the idle timeout (shorter than the nonce lifetime) and its alarm ran', async () => {
      const g = gate({ REPLAY_MODE: mode, IDLE_TIMEOUT: '30', NONCE_LIFETIME: '300' })
      const { captured, handle } = await session(g, 2, '/private/idle')
      // Long after the last request: the quiet-spell flush has run, then the alarm.
      await quietSpell(clock, env.CONTEXTS.getByName(handle), 31)
      await runAlarm(handle)
      // What the alarm kept must come back from storage, not from the object's memory.
      await evict(handle)
      expect(await replayAll(g, captured, '/private/idle')).toEqual([401, 401])
    })

    it('after the user was revoked', async () => {
      const g = gate({ REPLAY_MODE: mode })
      const { captured } = await session(g, 2, '/private/rev')
      const revoked = await g(
        new Request(`${GATE}/.digest-gate/admin/users/digest-gate/alice/revoke`, {
          method: 'POST',
          headers: ADMIN,
        })
      )
      expect(revoked.status).toBe(200)
      expect(await replayAll(g, captured, '/private/rev')).toEqual([401, 401])
    })

    it('after a new login on the same handle', async () => {
      const g = gate({ REPLAY_MODE: mode, MAX_LIFETIME: '60', NONCE_LIFETIME: '300' })
      const { alice, captured, handle } = await session(g, 2, '/private/again')
      // Long after the last request: the quiet-spell flush has run, then the alarm.
      await quietSpell(clock, env.CONTEXTS.getByName(handle), 61)
      await runAlarm(handle)
      // What the alarm kept must come back from storage, not from the object's memory.
      await evict(handle)
      // The real client logs in again on its handle (the authority is asked, no prompt).
      expect((await alice.fetch('/private/again/3')).status).toBe(200)
      expect(handleOf(alice.sent.at(-1)?.authorization ?? '')).toBe(handle)
      expect(await replayAll(g, captured, '/private/again')).toEqual([401, 401])
    })

    it('after an eviction right after an out-of-order request that followed a quiet spell', async () => {
      const g = gate({ REPLAY_MODE: mode })
      const alice = client(g, 'alice', 'wonderland')
      expect((await alice.fetch('/private/ooo/1')).status).toBe(200)
      const raw = alice.raw
      // nc 2..5 prepared in order, sent 2 and 5 now, 3 after the quiet spell.
      const headers: string[] = []
      for (let i = 2; i <= 5; i++) {
        headers.push((await raw.authorizationFor('GET', `${GATE}/private/ooo/x`)) ?? '')
      }
      const send = (h: string, ip = '198.51.100.7') =>
        g(
          new Request(`${GATE}/private/ooo/x`, {
            headers: { authorization: h, 'cf-connecting-ip': ip },
          })
        )
      expect((await send(headers[0] as string)).status).toBe(200)
      expect((await send(headers[3] as string)).status).toBe(200)
      // The quiet spell: the exact state is flushed and the reservation mark lowered.
      await runInDurableObject(
        env.CONTEXTS.getByName(handleOf(headers[0] as string)),
        (context: SecurityContext) => context.flushNcState()
      )
      const late = await send(headers[1] as string)
      // Strict mode refuses anything below the highest nc seen; window mode accepts it once.
      expect(late.status).toBe(mode === 'window' ? 200 : 401)
      await evict(handleOf(headers[1] as string))
      const before = origin.requests.length
      expect((await send(headers[1] as string, '203.0.113.98')).status).toBe(401)
      expect(origin.requests.length).toBe(before)
    })

    it('after the session ended in a crash before its nc state was flushed', async () => {
      const g = gate({ REPLAY_MODE: mode, MAX_LIFETIME: '60', NONCE_LIFETIME: '300' })
      const { alice, captured, handle } = await session(g, 2, '/private/crash')
      // No quiet spell: storage holds only the reservation mark when the session ends.
      clock.advance(61)
      await runAlarm(handle)
      await evict(handle)
      // A replay under the mark cannot be told from an nc never used without the key: the
      // authority verifies it, and it is refused as a verified replay.
      const calls = authority.calls
      expect(await replayAll(g, captured, '/private/crash')).toEqual([401, 401])
      expect(authority.calls).toBeGreaterThan(calls)
      // The real client is answered stale=true, never a prompt, and carries on on its handle.
      expect((await alice.fetch('/private/crash/3')).status).toBe(200)
      expect(handleOf(alice.sent.at(-1)?.authorization ?? '')).toBe(handle)
      expect(alice.sent.filter((s) => s.status === 401)).toHaveLength(2)
    })

    it('after a restart of every context object', async () => {
      const g = gate({ REPLAY_MODE: mode })
      const { captured } = await session(g, 3, '/private/restart')
      for (const id of await listDurableObjectIds(env.CONTEXTS)) {
        await evictDurableObject(env.CONTEXTS.get(id)).catch(() => {})
      }
      expect(await replayAll(g, captured, '/private/restart')).toEqual([401, 401, 401])
    })
  })
}

describe('RFC 2069 form (QOP=none): each nonce is single-use', () => {
  it('refuses a second use of a nonce, and the client carries on with nextnonce', async () => {
    const g = gate({ QOP: 'none' })
    const alice = client(g, 'alice', 'wonderland')
    for (let i = 1; i <= 4; i++) {
      const res = await alice.fetch(`/private/2069/${i}`)
      expect(res.status).toBe(200)
      expect(res.headers.get('authentication-info')).toMatch(/nextnonce="/)
    }
    // One challenge at the start, then each request on the nonce the previous answer named.
    expect(alice.sent.filter((s) => s.status === 401)).toHaveLength(1)
    const captured = alice.sent.filter((s) => s.status === 200).map((s) => s.authorization ?? '')
    expect(new Set(captured.map((h) => /nonce="([^"]+)"/.exec(h)?.[1])).size).toBe(4)
    expect(await replayAll(g, captured, '/private/2069')).toEqual([401, 401, 401, 401])
    expect(authority.calls).toBe(1)
  })
})

describe('no storage for strangers', () => {
  it('a fresh nonce answered with a wrong password creates no context object', async () => {
    const g = gate()
    const stranger = client(g, 'alice', 'not-the-password')
    expect((await stranger.fetch('/private/stranger')).status).toBe(401)
    // The handle the stranger answered with (the first request carried no credentials).
    const answered = stranger.sent.filter((s) => s.authorization !== null)
    expect(answered).toHaveLength(1)
    const handle = handleOf(answered[0]?.authorization ?? '')
    expect(handle).toMatch(/^[A-Za-z0-9_-]{22}$/)
    const ids = (await listDurableObjectIds(env.CONTEXTS)).map((id) => id.toString())
    expect(ids).not.toContain(env.CONTEXTS.idFromName(handle).toString())
  })
})
