/**
 * The refusal ring's isolate buffer on a simulated clock: however many refusals arrive, one
 * isolate writes at most once per WRITE_INTERVAL_MS, nothing is held longer than that, and a
 * write that fails or a drain cut short with its request does not stop the writes after it.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MAX_PENDING, RefusalBuffer, WRITE_INTERVAL_MS } from '../../src/gate/console/refusals.ts'
import type { RefusalReport } from '../../src/gate/console/reports.ts'

afterEach(() => {
  vi.restoreAllMocks()
})

/** Simulated time: sleeps end when the test moves the clock past them. */
class SimClock {
  t = 1_000_000
  private sleepers: { at: number; wake: () => void }[] = []
  now = () => this.t
  sleep = (ms: number) =>
    new Promise<void>((wake) => {
      this.sleepers.push({ at: this.t + ms, wake })
    })
  /** Move on `ms` and let everything due run. */
  async advance(ms: number): Promise<void> {
    this.t += ms
    const due = this.sleepers.filter((s) => s.at <= this.t)
    this.sleepers = this.sleepers.filter((s) => s.at > this.t)
    for (const s of due) s.wake()
    await settle()
  }
}

/** Let promise chains run (a macrotask turn). */
const settle = () => new Promise((r) => setTimeout(r, 0))

const row = (n: number): RefusalReport => ({
  at: n,
  user: `u${n}`,
  address: '192.0.2.1',
  method: 'GET',
  path: '/',
  reason: 'authority_logon_denied',
  status: 401,
})

function harness(fail: (call: number) => boolean = () => false) {
  const clock = new SimClock()
  const writes: { at: number; rows: RefusalReport[] }[] = []
  const background: Promise<unknown>[] = []
  const buffer = new RefusalBuffer(
    async (rows) => {
      writes.push({ at: clock.t, rows })
      if (fail(writes.length)) throw new Error('index overloaded')
    },
    clock.now,
    clock.sleep
  )
  const add = (n: number) => buffer.add(row(n), (p) => background.push(p))
  return { clock, writes, background, buffer, add }
}

describe('the refusal buffer', () => {
  it('writes the first refusal at once and a burst of 1000 in one write a second later', async () => {
    const { clock, writes, add } = harness()
    for (let n = 0; n < 1000; n++) add(n)
    await settle()
    expect(writes.map((w) => w.rows.length)).toEqual([1])
    await clock.advance(WRITE_INTERVAL_MS)
    // The buffer keeps the latest MAX_PENDING (the ring keeps no more anyway).
    expect(writes.map((w) => w.rows.length)).toEqual([1, MAX_PENDING])
    expect(writes[1]?.rows.at(-1)?.user).toBe('u999')
    expect(writes[1]?.rows[0]?.user).toBe(`u${1000 - MAX_PENDING}`)
  })

  it('turns a steady flood (100 a second for 60 s) into one write a second, losing nothing', async () => {
    const { clock, writes, add } = harness()
    let n = 0
    for (let second = 0; second < 60; second++) {
      for (let i = 0; i < 10; i++) {
        for (let j = 0; j < 10; j++) add(n++)
        await clock.advance(WRITE_INTERVAL_MS / 10)
      }
    }
    await clock.advance(WRITE_INTERVAL_MS)
    expect(writes.length).toBeLessThanOrEqual(61)
    for (let i = 1; i < writes.length; i++) {
      expect((writes[i]?.at ?? 0) - (writes[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(
        WRITE_INTERVAL_MS
      )
    }
    expect(writes.flatMap((w) => w.rows).map((r) => r.at)).toEqual(
      Array.from({ length: n }, (_, i) => i)
    )
  })

  it('drops a failed write (logged) and goes on with the next rows', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const { clock, writes, add } = harness((call) => call === 1)
    add(1)
    await settle()
    add(2)
    await clock.advance(WRITE_INTERVAL_MS)
    expect(writes.map((w) => w.rows.map((r) => r.at))).toEqual([[1], [2]])
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('console_report_failed'))
  })

  it('starts again after a drain that was cut short with its request', async () => {
    const { clock, writes, add, buffer } = harness()
    add(1)
    await settle()
    add(2)
    // The drain sleeps in a request that ends before its sleep does: that sleep never ends.
    clock.t += 40_000
    add(3)
    await settle()
    expect(writes.map((w) => w.rows.map((r) => r.at))).toEqual([[1], [2, 3]])
    expect(buffer.waiting).toBe(0)
  })
})
