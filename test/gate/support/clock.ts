/**
 * An injectable clock for tests inside workerd: Date.now() as the gate, its Durable Objects and
 * their alarms read it (they run in the test's isolate), moved by hand instead of slept through.
 */
import { runInDurableObject } from 'cloudflare:test'
import { vi } from 'vitest'

export interface FakeClock {
  /** Unix seconds now. */
  now(): number
  advance(seconds: number): void
}

/**
 * Time never runs backwards between the tests of a file (they share Durable Object storage, which
 * remembers times): each clock starts a day after where the last one stopped.
 */
let latestMs = 1_900_000_000_000

export function fakeClock(): FakeClock {
  latestMs += 86_400_000
  let ms = latestMs
  vi.spyOn(Date, 'now').mockImplementation(() => ms)
  return {
    now: () => Math.floor(ms / 1000),
    advance(seconds) {
      ms += seconds * 1000
      latestMs = Math.max(latestMs, ms)
    },
  }
}

/**
 * Hold the timers the Durable Objects set (a context's nc flush after a quiet spell): real time
 * never fires them. An eviction then does not wait for them (it drains a pending timer, which costs
 * the rest of its 2 s), and a quiet spell happens only where a test lets one pass. Undo with
 * vi.useRealTimers().
 */
export function holdTimers(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
}

/**
 * Let `seconds` pass with no request to one Durable Object: the clock moves on, and the held timers
 * that fall due fire inside that object's I/O context, where the real ones run (fired from the test
 * they would run outside it). Every held timer that falls due fires, whichever object set it: keep
 * one object busy before a spell.
 */
export async function quietSpell(
  clock: FakeClock,
  stub: DurableObjectStub,
  seconds: number
): Promise<void> {
  clock.advance(seconds)
  await runInDurableObject(stub, () => {
    vi.advanceTimersByTime(seconds * 1000)
  }).catch((err: { durableObjectReset?: unknown }) => {
    // A quiet context releases itself (SecurityContext) from a timer fired here, inside this call
    // (a real one fires outside any call): the reset may end this call as well.
    if (err?.durableObjectReset !== true) throw err
  })
}
