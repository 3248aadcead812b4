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

export function fakeClock(startSeconds = 1_900_000_000): FakeClock {
  let ms = startSeconds * 1000
  vi.spyOn(Date, 'now').mockImplementation(() => ms)
  return {
    now: () => Math.floor(ms / 1000),
    advance(seconds) {
      ms += seconds * 1000
    },
  }
}
