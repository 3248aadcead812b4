/**
 * An injectable clock for tests inside workerd: Date.now() as the gate, its Durable Objects and
 * their alarms read it (they run in the test's isolate), moved by hand instead of slept through.
 */
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
