/**
 * VerifyBatches with a fake `send`: at most one call in flight per key, later items sent together
 * by the first of them (from its own request's context: Node's AsyncLocalStorage follows promise
 * continuations as workerd's request contexts do), bounded batches, failures fanned out, and each
 * caller given the answer of its own item, in submission order per key.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type BatchCaller,
  type ItemResult,
  MAX_BATCH,
  TURN_TIMEOUT_MS,
  VerifyBatches,
} from '../../src/gate/verify-batches.ts'

/** The request whose code is running: what workerd calls the current I/O context. */
const request = new AsyncLocalStorage<string>()

interface Call {
  key: string
  items: string[]
  /** The request the call was sent from. */
  from: string | undefined
  settle: (results: ItemResult<string>[] | Error) => void
}

/** Answers are derived from items, so each caller can check it got its own. */
const answerOf = (item: string) => `answer:${item}`
const ok = (items: string[]) => items.map((i) => ({ answer: answerOf(i) }))

function harness(maxBatch?: number, maxInFlight?: number) {
  const calls: Call[] = []
  // The queued items' timers, fired by hand; the clock moved by hand.
  const timers: (() => void)[] = []
  let ms = 0
  const batches = new VerifyBatches<string, string>(
    (key, items) =>
      new Promise((resolve, reject) => {
        calls.push({
          key,
          items,
          from: request.getStore(),
          settle: (r) => (r instanceof Error ? reject(r) : resolve(r)),
        })
      }),
    {
      maxBatch,
      maxInFlight,
      now: () => ms,
      wait: () => new Promise<void>((resolve) => timers.push(resolve)),
    }
  )
  /** Let the turn timeout pass: every pending timer fires. */
  const timeout = () => {
    ms += TURN_TIMEOUT_MS
    for (const fire of timers.splice(0)) fire()
  }
  const kept: Promise<unknown>[] = []
  const rode: string[] = []
  const outcomes = new Map<string, { answer?: string; error?: unknown }>()
  const submit = (key: string, item: string) => {
    const caller: BatchCaller = {
      waitUntil: (p) => kept.push(p),
      rode: () => rode.push(item),
    }
    const p = request.run(item, () => batches.submit(key, item, caller))
    p.then(
      (answer) => outcomes.set(item, { answer }),
      (error: unknown) => outcomes.set(item, { error })
    )
    return p
  }
  return { batches, calls, kept, rode, outcomes, submit, timers, timeout }
}

/** Lets every pending continuation run. */
const flush = () => new Promise((r) => setImmediate(r))

describe('VerifyBatches', () => {
  it('sends an item alone when nothing of its key is in flight', async () => {
    const h = harness()
    const p = h.submit('k', 'a')
    expect(h.calls.map((c) => c.items)).toEqual([['a']])
    h.calls[0]?.settle(ok(['a']))
    expect(await p).toBe('answer:a')
    expect(h.rode).toEqual([])
    // The lane is free again: the next item goes out at once.
    h.submit('k', 'b')
    expect(h.calls.map((c) => c.items)).toEqual([['a'], ['b']])
  })

  it('queues items while a call is in flight and sends them in one call from the first', async () => {
    const h = harness()
    const a = h.submit('k', 'a')
    const rest = ['b', 'c', 'd'].map((i) => h.submit('k', i))
    expect(h.calls).toHaveLength(1)
    expect(h.batches.queued('k')).toBe(3)
    h.calls[0]?.settle(ok(['a']))
    await flush()
    expect(h.calls.map((c) => [c.items, c.from])).toEqual([
      [['a'], 'a'],
      [['b', 'c', 'd'], 'b'],
    ])
    // b leads (its call), c and d ride in it.
    expect(h.rode).toEqual(['c', 'd'])
    h.calls[1]?.settle(ok(['b', 'c', 'd']))
    expect(await a).toBe('answer:a')
    expect(await Promise.all(rest)).toEqual(['answer:b', 'answer:c', 'answer:d'])
    expect(h.batches.queued('k')).toBe(0)
  })

  it('every participant hands its part to its waitUntil; they settle with the batch', async () => {
    const h = harness()
    h.submit('k', 'a')
    h.submit('k', 'b')
    h.submit('k', 'c')
    expect(h.kept).toHaveLength(3)
    let settled = 0
    for (const p of h.kept) p.then(() => settled++)
    h.calls[0]?.settle(ok(['a']))
    await flush()
    expect(settled).toBe(1)
    h.calls[1]?.settle(ok(['b', 'c']))
    await flush()
    expect(settled).toBe(3)
  })

  it(`sends at most ${MAX_BATCH} items per call by default; the rest wait for the next turn`, async () => {
    const h = harness()
    h.submit('k', 'first')
    const items = Array.from({ length: MAX_BATCH + 5 }, (_, i) => `i${i}`)
    for (const i of items) h.submit('k', i)
    h.calls[0]?.settle(ok(['first']))
    await flush()
    expect(h.calls[1]?.items).toEqual(items.slice(0, MAX_BATCH))
    h.calls[1]?.settle(ok(items.slice(0, MAX_BATCH)))
    await flush()
    expect(h.calls[2]?.items).toEqual(items.slice(MAX_BATCH))
    expect(h.calls[2]?.from).toBe(`i${MAX_BATCH}`)
  })

  it('honours a smaller bound', async () => {
    const h = harness(2)
    h.submit('k', 'a')
    for (const i of ['b', 'c', 'd', 'e', 'f']) h.submit('k', i)
    for (let n = 0; n < 3; n++) {
      const last = h.calls.at(-1) as Call
      last.settle(ok(last.items))
      await flush()
    }
    expect(h.calls.map((c) => c.items)).toEqual([['a'], ['b', 'c'], ['d', 'e'], ['f']])
  })

  it('a failed call fails every item in it with the same error; the next turn still goes out', async () => {
    const h = harness()
    const a = h.submit('k', 'a')
    const b = h.submit('k', 'b')
    const c = h.submit('k', 'c')
    const boom = Object.assign(new Error('object unreachable'), { retryable: true })
    h.calls[0]?.settle(ok(['a']))
    await flush()
    const d = h.submit('k', 'd')
    h.calls[1]?.settle(boom)
    await expect(b).rejects.toBe(boom)
    await expect(c).rejects.toBe(boom)
    expect(await a).toBe('answer:a')
    await flush()
    expect(h.calls[2]?.items).toEqual(['d'])
    h.calls[2]?.settle(ok(['d']))
    expect(await d).toBe('answer:d')
  })

  it("an item's own failure is that item's alone", async () => {
    const h = harness()
    h.submit('k', 'a')
    const b = h.submit('k', 'b')
    const c = h.submit('k', 'c')
    h.calls[0]?.settle(ok(['a']))
    await flush()
    const own = new Error('b alone')
    h.calls[1]?.settle([{ error: own }, { answer: answerOf('c') }])
    await expect(b).rejects.toBe(own)
    expect(await c).toBe('answer:c')
  })

  it('a call answered with the wrong number of results fails its items, and no one hangs', async () => {
    const h = harness()
    h.submit('k', 'a')
    const b = h.submit('k', 'b')
    const c = h.submit('k', 'c')
    h.calls[0]?.settle(ok(['a']))
    await flush()
    h.calls[1]?.settle(ok(['b']))
    await expect(b).rejects.toThrow(/batch of 2/)
    await expect(c).rejects.toThrow(/batch of 2/)
  })

  it('a send that throws at once fails its items like a rejected call', async () => {
    const batches = new VerifyBatches<string, string>(
      () => {
        throw new Error('no stub')
      },
      { wait: () => new Promise(() => {}) }
    )
    await expect(batches.submit('k', 'a')).rejects.toThrow('no stub')
    await expect(batches.submit('k', 'b')).rejects.toThrow('no stub')
  })

  it('each queued item holds a timer of its own request while it waits', async () => {
    const h = harness()
    h.submit('k', 'a')
    h.submit('k', 'b')
    h.submit('k', 'c')
    // The first sends at once (its call is its pending I/O); b and c each wait on a timer.
    expect(h.timers).toHaveLength(2)
  })

  it('an item not woken within the bound sends its own call, and the stalled lane is dropped', async () => {
    const h = harness()
    h.submit('k', 'a') // its call never settles: a leader lost
    const b = h.submit('k', 'b')
    const c = h.submit('k', 'c')
    h.timeout()
    await flush()
    expect(h.calls.map((x) => [x.items, x.from])).toEqual([
      [['a'], 'a'],
      [['b'], 'b'],
      [['c'], 'c'],
    ])
    expect(h.rode).toEqual([])
    h.calls[1]?.settle(ok(['b']))
    h.calls[2]?.settle(ok(['c']))
    expect(await b).toBe('answer:b')
    expect(await c).toBe('answer:c')
    // A new item starts a new lane at once instead of queueing behind the lost call.
    h.submit('k', 'd')
    expect(h.calls.at(-1)?.items).toEqual(['d'])
  })

  it('items of a batch whose head never sends it get a retryable failure after the bound', async () => {
    // The head's request is cancelled before it runs: its wake-up never leads to a call.
    const calls: string[][] = []
    const timers: (() => void)[] = []
    let ms = 0
    const batches = new VerifyBatches<string, string>(
      (_key, items) => {
        calls.push(items)
        return Promise.resolve(ok(items))
      },
      { now: () => ms, wait: () => new Promise<void>((r) => timers.push(r)) }
    )
    // a goes alone; b and c queue behind it.
    const a = batches.submit('k', 'a')
    const b = batches.submit('k', 'b')
    const c = batches.submit('k', 'c')
    void b
    // b's request is gone: its wake-up (the turn to lead [b, c]) reaches nobody.
    const lane = (
      batches as unknown as { lanes: Map<string, { queue: { wake: unknown }[] }> }
    ).lanes.get('k')
    const head = lane?.queue[0]
    if (head) head.wake = () => {}
    expect(await a).toBe('answer:a')
    await flush()
    expect(calls).toEqual([['a']])
    ms += TURN_TIMEOUT_MS
    for (const fire of timers.splice(0)) fire()
    await expect(c).rejects.toMatchObject({ retryable: true })
    // The stalled lane is gone: the next item goes out at once.
    batches.submit('k', 'd')
    expect(calls.at(-1)).toEqual(['d'])
  })

  it('a timer that fires after its item was answered changes nothing', async () => {
    const h = harness()
    h.submit('k', 'a')
    const b = h.submit('k', 'b')
    h.calls[0]?.settle(ok(['a']))
    await flush()
    h.calls[1]?.settle(ok(['b']))
    expect(await b).toBe('answer:b')
    h.timeout()
    await flush()
    expect(h.calls).toHaveLength(2)
  })

  it('with two calls allowed in flight, the second item goes out at once and the rest queue', async () => {
    const h = harness(undefined, 2)
    h.submit('k', 'a')
    h.submit('k', 'b')
    h.submit('k', 'c')
    h.submit('k', 'd')
    expect(h.calls.map((c) => c.items)).toEqual([['a'], ['b']])
    h.calls[1]?.settle(ok(['b']))
    await flush()
    expect(h.calls.map((c) => [c.items, c.from])).toEqual([
      [['a'], 'a'],
      [['b'], 'b'],
      [['c', 'd'], 'c'],
    ])
  })

  it('different keys never share a call', async () => {
    const h = harness()
    h.submit('x', 'x1')
    h.submit('y', 'y1')
    h.submit('x', 'x2')
    h.submit('y', 'y2')
    h.submit('x', 'x3')
    expect(h.calls.map((c) => [c.key, c.items])).toEqual([
      ['x', ['x1']],
      ['y', ['y1']],
    ])
    h.calls[0]?.settle(ok(['x1']))
    h.calls[1]?.settle(ok(['y1']))
    await flush()
    expect(h.calls.slice(2).map((c) => [c.key, c.items])).toEqual([
      ['x', ['x2', 'x3']],
      ['y', ['y2']],
    ])
  })

  it('property: any interleaving of arrivals and settlements answers each caller its own item, in submission order per key', async () => {
    type Op = { kind: 'submit'; key: string } | { kind: 'settle'; pick: number; fail: boolean }
    // Arrivals outnumber settlements, so that batches of several items form.
    const op: fc.Arbitrary<Op> = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('submit' as const),
          key: fc.constantFrom('x', 'y', 'z'),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('settle' as const),
          pick: fc.nat(),
          fail: fc.boolean(),
        }),
      }
    )
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(op, { maxLength: 60 }),
        async (max, inFlight, ops) => {
          const h = harness(max, inFlight)
          const open = new Set<Call>()
          const failed = new Set<string>()
          const submitted: Record<string, string[]> = {}
          let serial = 0
          const settle = (call: Call, fail: boolean) => {
            open.delete(call)
            if (fail) {
              for (const i of call.items) failed.add(i)
              call.settle(new Error('down'))
            } else call.settle(ok(call.items))
          }
          const seen = new Set<Call>()
          const collect = () => {
            for (const c of h.calls) {
              if (!seen.has(c)) {
                seen.add(c)
                open.add(c)
              }
            }
          }
          for (const o of ops) {
            if (o.kind === 'submit') {
              const item = `${o.key}${++serial}`
              const list = submitted[o.key] ?? []
              submitted[o.key] = list
              list.push(item)
              h.submit(o.key, item)
            } else {
              const pending = [...open]
              const call = pending[o.pick % Math.max(1, pending.length)]
              if (call) settle(call, o.fail)
            }
            await flush()
            collect()
            // At most `inFlight` calls out per key, each within the bound.
            for (const key of ['x', 'y', 'z']) {
              const out = [...open].filter((c) => c.key === key).length
              expect(out).toBeLessThanOrEqual(inFlight)
            }
            for (const c of open) expect(c.items.length).toBeLessThanOrEqual(max)
          }
          // Drain: settle whatever is left until nothing is in flight.
          while (open.size > 0) {
            for (const c of [...open]) settle(c, false)
            await flush()
            collect()
          }
          for (const [key, items] of Object.entries(submitted)) {
            const sent = h.calls.filter((c) => c.key === key)
            // Every item sent once, in submission order, each call from its first item's request.
            expect(sent.flatMap((c) => c.items)).toEqual(items)
            for (const c of sent) expect(c.from).toBe(c.items[0])
          }
          for (const items of Object.values(submitted)) {
            for (const item of items) {
              const got = h.outcomes.get(item)
              if (failed.has(item)) expect(got?.error).toBeInstanceOf(Error)
              else expect(got).toEqual({ answer: answerOf(item) })
            }
          }
          // One call per item at most; the others rode in someone's call.
          expect(h.calls.length + h.rode.length).toBe(serial)
        }
      ),
      { numRuns: 200 }
    )
  })
})
