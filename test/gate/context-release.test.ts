/**
 * A quiet security context leaves memory once its quiet-spell flush has written its nc state
 * (SecurityContext.release): the session carries on from storage without a stale, no captured
 * request is accepted again, and a request that meets the released object is answered as if the
 * object had stayed. Real Durable Objects; the objects' timers are held and fired by hand.
 */
import { createExecutionContext, runInDurableObject } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { readNonceFields } from '../../src/digest/tokens.ts'
import type { SecurityContext } from '../../src/gate/security-context.ts'
import { buildGate } from '../../src/index.ts'
import {
  client,
  type FakeAuthority,
  type FakeOrigin,
  GATE,
  type GateFetch,
  installPeers,
} from './fakes.ts'
import { type FakeClock, fakeClock, holdTimers, quietSpell } from './support/clock.ts'

let authority: FakeAuthority
let origin: FakeOrigin
let clock: FakeClock

beforeEach(() => {
  ;({ authority, origin } = installPeers())
  clock = fakeClock()
  holdTimers()
})
afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

type Stub = DurableObjectStub<SecurityContext>

function handleOf(authorization: string): string {
  const nonce = /nonce="([^"]+)"/.exec(authorization)?.[1] ?? ''
  return readNonceFields(nonce)?.handle ?? ''
}

/**
 * The gate, its context objects reached through `first` for the next calls (a stub of an instance
 * that is gone: a call in flight when its object released itself), then as usual; each object it
 * reaches is named in `reached`.
 */
function gateWith(
  first: Stub[] = [],
  reached: string[] = [],
  vars: Record<string, string> = {}
): GateFetch {
  const contexts = {
    getByName: (name: string) => {
      reached.push(name)
      return first.shift() ?? env.CONTEXTS.getByName(name)
    },
  } as unknown as typeof env.CONTEXTS
  // Released 2 s after the last call, as a self-hosted gate runs (the default is off).
  const e = {
    ...env,
    REPLAY_MODE: 'window',
    CONTEXT_RELEASE_AFTER: '2',
    ...vars,
    CONTEXTS: contexts,
  } as Parameters<typeof buildGate>[0]
  const app = buildGate(e)
  return async (req) => app.fetch(req, e, createExecutionContext())
}

/** Has the instance behind `stub` reset itself? Its stub then breaks. */
async function isGone(stub: Stub): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    const gone = await runInDurableObject(stub, () => false).catch(
      (err: { durableObjectReset?: boolean }) => err.durableObjectReset === true
    )
    if (gone) return true
  }
  return false
}

/** Let the object go quiet: its flush timer fires, it writes its nc state and releases itself. */
async function release(handle: string, seconds = 3): Promise<Stub> {
  const stub = env.CONTEXTS.getByName(handle)
  await quietSpell(clock, stub, seconds)
  if (await isGone(stub)) return stub
  throw new Error('the context object was not released')
}

function send(g: GateFetch, authorization: string, ip = '198.51.100.7', path = '/private/r') {
  return g(new Request(`${GATE}${path}`, { headers: { authorization, 'cf-connecting-ip': ip } }))
}

describe('a quiet security context is released once its nc state is written', () => {
  it('the session carries on without a stale, and every captured request is refused', async () => {
    const g = gateWith()
    const alice = client(g, 'alice', 'wonderland')
    for (let i = 1; i <= 3; i++) expect((await alice.fetch(`/private/a/${i}`)).status).toBe(200)
    const captured = alice.sent.filter((s) => s.status === 200).map((s) => s.authorization ?? '')
    const handle = handleOf(captured[0] ?? '')
    await release(handle)
    // Written before the reset: the exact state (mark lowered to the highest nc), not a mark.
    const rows = await runInDurableObject(env.CONTEXTS.getByName(handle), (_, state) =>
      state.storage.sql.exec<{ reserved: number }>('SELECT reserved FROM nonces').toArray()
    )
    expect(rows).toEqual([{ reserved: 3 }])
    const calls = authority.calls
    const forwarded = origin.requests.length
    for (const [i, authorization] of captured.entries()) {
      expect((await send(g, authorization, '203.0.113.99', `/private/a/${i + 1}`)).status).toBe(401)
    }
    expect(origin.requests.length).toBe(forwarded)
    expect((await alice.fetch('/private/a/4')).status).toBe(200)
    // No stale, no prompt, no authority: the fresh instance verified from storage.
    expect(alice.sent.filter((s) => s.status === 401)).toHaveLength(1)
    expect(authority.calls).toBe(calls)
  })

  it('a request that meets the released instance is sent again to a fresh one, once', async () => {
    const setup = gateWith()
    const alice = client(setup, 'alice', 'wonderland')
    expect((await alice.fetch('/private/b/1')).status).toBe(200)
    const handle = handleOf(alice.sent.at(-1)?.authorization ?? '')
    const headers: string[] = []
    for (let i = 0; i < 2; i++) {
      headers.push((await alice.raw.authorizationFor('GET', `${GATE}/private/r`)) ?? '')
    }
    const gone = await release(handle)
    const forwarded = origin.requests.length
    // A fresh nc through the gone instance: verified by a fresh one.
    expect((await send(gateWith([gone]), headers[0] as string)).status).toBe(200)
    // Its replay, and a replay of the first request, through the gone instance: refused.
    expect((await send(gateWith([gone]), headers[0] as string, '203.0.113.98')).status).toBe(401)
    const first = alice.sent.find((s) => s.status === 200)?.authorization ?? ''
    expect((await send(gateWith([gone]), first, '203.0.113.98', '/private/b/1')).status).toBe(401)
    expect(origin.requests.length).toBe(forwarded + 1)
    // Sent again only once: a reset met twice is not retried in a loop (the gate's own fault).
    const reached: string[] = []
    const twice = gateWith([gone, gone], reached)
    await send(twice, headers[1] as string).catch(() => undefined)
    expect(reached).toEqual([handle, handle])
    expect(origin.requests.length).toBe(forwarded + 1)
  })

  it('a call that begins while the flush becomes durable keeps the object resident', async () => {
    const g = gateWith()
    const alice = client(g, 'alice', 'wonderland')
    expect((await alice.fetch('/private/d/1')).status).toBe(200)
    const handle = handleOf(alice.sent.at(-1)?.authorization ?? '')
    const stub = env.CONTEXTS.getByName(handle)
    clock.advance(3)
    await runInDurableObject(stub, (context: SecurityContext) => {
      // The flush timer fires (the release now waits for storage), then a call begins.
      vi.advanceTimersByTime(3000)
      context.revalidated({ name: 'nobody', groups: [] }, clock.now())
    })
    for (let i = 0; i < 20; i++) await runInDurableObject(stub, () => undefined)
    // Still the same instance: its stub works.
    await expect(runInDurableObject(stub, () => 'resident')).resolves.toBe('resident')
    expect((await alice.fetch('/private/d/2')).status).toBe(200)
    // The next quiet spell releases it.
    await release(handle)
  })

  it('CONTEXT_RELEASE_AFTER: later, or never (the runtime evicts)', async () => {
    for (const [after, seconds, released] of [
      ['5', 3, false],
      ['5', 6, true],
      ['off', 30, false],
    ] as const) {
      const g = gateWith([], [], { CONTEXT_RELEASE_AFTER: after })
      const alice = client(g, 'alice', 'wonderland')
      expect((await alice.fetch('/private/e/1')).status).toBe(200)
      const stub = env.CONTEXTS.getByName(handleOf(alice.sent.at(-1)?.authorization ?? ''))
      await quietSpell(clock, stub, 2)
      await quietSpell(clock, stub, seconds - 2)
      expect(await isGone(stub)).toBe(released)
      // Flushed at the quiet spell whatever the setting: the exact state, not a mark.
      const rows = await runInDurableObject(
        env.CONTEXTS.getByName(handleOf(alice.sent.at(-1)?.authorization ?? '')),
        (_, state) =>
          state.storage.sql.exec<{ reserved: number }>('SELECT reserved FROM nonces').toArray()
      )
      expect(rows).toEqual([{ reserved: 1 }])
      expect((await alice.fetch('/private/e/2')).status).toBe(200)
      vi.clearAllTimers()
    }
  })

  it('replay off (no nc state): the context object is released all the same', async () => {
    const g = gateWith([], [], { REPLAY_MODE: 'off' })
    const alice = client(g, 'alice', 'wonderland')
    expect((await alice.fetch('/private/f/1')).status).toBe(200)
    const handle = handleOf(alice.sent.at(-1)?.authorization ?? '')
    await release(handle)
    expect((await alice.fetch('/private/f/2')).status).toBe(200)
    expect(alice.sent.filter((s) => s.status === 401)).toHaveLength(1)
  })

  it('requests racing the release are each answered once: fresh ncs accepted, replays refused', async () => {
    let released = 0
    for (const delay of [0, 0, 1, 1, 2, 3, 5, 8]) {
      const g = gateWith()
      const alice = client(g, 'alice', 'wonderland')
      expect((await alice.fetch('/private/c/1')).status).toBe(200)
      const handle = handleOf(alice.sent.at(-1)?.authorization ?? '')
      const headers: string[] = []
      for (let i = 0; i < 6; i++) {
        headers.push((await alice.raw.authorizationFor('GET', `${GATE}/private/r`)) ?? '')
      }
      const forwarded = origin.requests.length
      const stub = env.CONTEXTS.getByName(handle)
      // Sent in a shuffled order (window mode accepts each nc once, in any order), from before
      // to after the moment the object flushes and releases itself.
      const order = [3, 0, 5, 1, 4, 2]
      const raced = await Promise.all([
        scheduler.wait(delay * 3).then(() => quietSpell(clock, stub, 3)),
        ...order.map(async (i, k) => {
          await scheduler.wait(delay * k)
          return send(g, headers[i] as string)
        }),
      ])
      const statuses = raced.filter((r) => r instanceof Response).map((r) => r.status)
      expect(statuses).toEqual(Array(6).fill(200))
      expect(origin.requests.length).toBe(forwarded + 6)
      const replayed = await Promise.all(headers.map((h) => send(g, h, '203.0.113.97')))
      expect(replayed.map((r) => r.status)).toEqual(Array(6).fill(401))
      expect(origin.requests.length).toBe(forwarded + 6)
      const gone = await runInDurableObject(stub, () => false).catch(
        (err: { durableObjectReset?: boolean }) => err.durableObjectReset === true
      )
      if (gone) released++
      // The next round's quiet spell must fire only its own object's timers.
      vi.clearAllTimers()
    }
    // The race was real: the objects did release themselves while the requests went on.
    expect(released).toBeGreaterThan(0)
  })
})
