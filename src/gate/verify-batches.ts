/**
 * One call to a security context's object for the concurrent verifies of its handle in this
 * isolate. A browser's parallel requests of one session arrive together and the object would
 * judge them one after another anyway; each call to it costs more than the judgement. So while
 * one call for a handle is in flight, later verifies of that handle queue, and when it settles
 * the queue goes out in one call (at most `maxBatch` items; the rest wait for the next turn),
 * which the object judges item by item, in arrival order, exactly as separate calls.
 *
 * workerd ties an I/O object (a Durable Object stub) to the request that made it, and may cancel a
 * request's I/O once it has answered. So a batch is never sent from the request whose call just
 * settled: the first queued request is woken (its own promise, resolved from the other request;
 * workerd runs what follows in the request that created the promise) and sends the batch itself.
 *
 * A request that only awaits a promise another request will resolve has, to workerd, nothing
 * coming: it is cancelled as hung. So each queued request holds a timer of its own while it
 * waits (`scheduler.wait`, which test fakes of setTimeout leave alone). The timer is also the
 * bound: a request not woken within `turnTimeoutMs` leaves the queue and sends its own call, and a
 * lane whose call has been out that long is dropped, so a lost leader costs a delay, never a hang.
 * Each participant also hands its part to its request's `waitUntil`, so that a client going
 * away does not strand the others.
 */

/**
 * Whether what follows a promise runs in the request that created it when another request
 * resolves it (workerd's compatibility flag `handle_cross_request_promise_resolution`, on by
 * default since 2024-10-14). Without it a woken request would go on in the waker's context, its
 * I/O refused there: no batching then.
 */
export function wakeupsStayInTheirRequest(): boolean {
  const cf = (
    globalThis as unknown as { Cloudflare?: { compatibilityFlags?: Record<string, boolean> } }
  ).Cloudflare
  return cf?.compatibilityFlags?.handle_cross_request_promise_resolution === true
}

/**
 * Batching on or off; undefined: as the runtime allows (wakeupsStayInTheirRequest). The vitest
 * pool for workerd turns the flag off; tests whose requests share one context turn batching on.
 */
export const batching: { enabled: boolean | undefined } = { enabled: undefined }

export function batchingEnabled(): boolean {
  return batching.enabled ?? wakeupsStayInTheirRequest()
}

/** One item's outcome in a batch: its answer, or what its own call would have thrown. */
export type ItemResult<A> = { answer: A } | { error: unknown }

/** Sends `items` for `key` in one call from the current request; one result per item, in order. */
export type SendBatch<I, A> = (key: string, items: I[]) => Promise<ItemResult<A>[]>

/** The request a verify is made for, as far as batching needs it. */
export interface BatchCaller {
  /** Keeps this request's part (a batch it sends for others, its turn) alive past its answer. */
  waitUntil(p: Promise<unknown>): void
  /** Its item went out in a call another request sent: this request made no call of its own. */
  rode?(): void
}

export interface BatchOptions {
  /** Items per call at most. */
  maxBatch?: number
  /** Calls per key in flight at once before later items queue. */
  maxInFlight?: number
  /** How long a queued item waits for its turn before it sends its own call. */
  turnTimeoutMs?: number
  /** A timer of the current request (default `scheduler.wait`, else setTimeout). */
  wait?: (ms: number) => Promise<void>
  /** Milliseconds now (default Date.now). */
  now?: () => number
}

/** Items per call at most: a bounded message and a bounded synchronous run in the object. */
export const MAX_BATCH = 64

/**
 * Calls per handle in flight at once. With one, a request arriving just after a call went out
 * waits for it to come back before its own goes; two were measured and did not pay (more calls,
 * more CPU: docs/performance.md), so one is the default.
 */
export const MAX_IN_FLIGHT = 1

/** A call takes milliseconds; one out this long has lost its leader (or the object is stuck). */
export const TURN_TIMEOUT_MS = 5000

/** What wakes a queued item: its answer, or its turn to send the batch it heads. */
type Turn<I, A> = ItemResult<A> | { lead: Waiter<I, A>[] } | { alone: true }

interface Waiter<I, A> {
  item: I
  caller: BatchCaller | undefined
  wake: (turn: Turn<I, A>) => void
  /** Taken into a batch (waking it again once answered changes nothing). */
  batched?: boolean
}

/** One key's call in flight and the items that arrived since, in order. */
interface Lane<I, A> {
  queue: Waiter<I, A>[]
  /** Its calls out now (a woken leader's counts from its wake-up). */
  inFlight: number
  /** When its current call went out (ms). */
  since: number
}

const ignore = () => {}

function defaultWait(ms: number): Promise<void> {
  const s = (globalThis as unknown as { scheduler?: { wait(ms: number): Promise<void> } }).scheduler
  if (s) return s.wait(ms)
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export class VerifyBatches<I, A> {
  private readonly lanes = new Map<string, Lane<I, A>>()
  private readonly send: SendBatch<I, A>
  private readonly maxBatch: number
  private readonly maxInFlight: number
  private readonly turnTimeoutMs: number
  private readonly wait: (ms: number) => Promise<void>
  private readonly now: () => number

  constructor(send: SendBatch<I, A>, options: BatchOptions = {}) {
    this.send = send
    this.maxBatch = Math.max(1, options.maxBatch ?? MAX_BATCH)
    this.maxInFlight = Math.max(1, options.maxInFlight ?? MAX_IN_FLIGHT)
    this.turnTimeoutMs = options.turnTimeoutMs ?? TURN_TIMEOUT_MS
    this.wait = options.wait ?? defaultWait
    this.now = options.now ?? Date.now
  }

  /** `item`'s answer, sent at once when nothing for `key` is in flight, else with the next batch. */
  submit(key: string, item: I, caller?: BatchCaller): Promise<A> {
    let lane = this.lanes.get(key)
    let done: Promise<A>
    if (lane === undefined || (lane.inFlight < this.maxInFlight && lane.queue.length === 0)) {
      if (lane === undefined) {
        // `since` is set as the call goes out (sendFrom).
        lane = { queue: [], inFlight: 0, since: 0 }
        this.lanes.set(key, lane)
      }
      lane.inFlight++
      done = this.sendFrom(key, lane, [{ item, caller, wake: ignore }]).then(unwrap)
    } else {
      done = this.queue(key, lane, item, caller)
    }
    // Until the call settles and the next turn is handed on, every later item of `key` waits on it.
    caller?.waitUntil(done.catch(ignore))
    return done
  }

  /** Items waiting for `key` now (tests, diagnostics). */
  queued(key: string): number {
    return this.lanes.get(key)?.queue.length ?? 0
  }

  private async queue(
    key: string,
    lane: Lane<I, A>,
    item: I,
    caller: BatchCaller | undefined
  ): Promise<A> {
    const turn = await new Promise<Turn<I, A>>((wake) => {
      const waiter: Waiter<I, A> = { item, caller, wake }
      lane.queue.push(waiter)
      // Keeps this request alive while it waits, and bounds the wait.
      this.wait(this.turnTimeoutMs).then(() => this.timedOut(key, lane, waiter), ignore)
    })
    if ('lead' in turn) return unwrap(await this.sendFrom(key, lane, turn.lead))
    if ('alone' in turn) return unwrap(await this.sendAlone(key, item))
    return unwrap(turn)
  }

  /**
   * Not answered within the bound. Still queued: out of the queue, its own call. Taken into a
   * batch whose head never sent it (that request was cancelled) or whose call hangs: refused as
   * a store that cannot answer (sent again it would meet its own nc). A stalled lane is dropped.
   */
  private timedOut(key: string, lane: Lane<I, A>, waiter: Waiter<I, A>): void {
    if (this.lanes.get(key) === lane && this.now() - lane.since >= this.turnTimeoutMs) {
      this.lanes.delete(key)
    }
    const at = lane.queue.indexOf(waiter)
    if (at >= 0) {
      lane.queue.splice(at, 1)
      waiter.wake({ alone: true })
    } else if (waiter.batched) {
      waiter.wake({ error: stalled() })
    }
  }

  /**
   * Sends `batch` (its head is this request's own item) from this request, answers the others,
   * then hands the lane to the next queued item. A failed call fails every item alike.
   */
  private async sendFrom(
    key: string,
    lane: Lane<I, A>,
    batch: Waiter<I, A>[]
  ): Promise<ItemResult<A>> {
    lane.since = this.now()
    let results: ItemResult<A>[]
    try {
      results = await this.send(
        key,
        batch.map((w) => w.item)
      )
      if (results.length !== batch.length) {
        throw new Error(`a batch of ${batch.length} was answered with ${results.length} results`)
      }
    } catch (error) {
      results = batch.map(() => ({ error }))
    }
    for (let i = 1; i < batch.length; i++) {
      ;(batch[i] as Waiter<I, A>).wake(results[i] as ItemResult<A>)
    }
    lane.inFlight--
    this.handOver(key, lane)
    return results[0] as ItemResult<A>
  }

  /** A call outside the lanes (a queued item that waited too long). */
  private async sendAlone(key: string, item: I): Promise<ItemResult<A>> {
    try {
      const [result] = await this.send(key, [item])
      return result ?? { error: new Error('a call of one item was answered with none') }
    } catch (error) {
      return { error }
    }
  }

  /** The next batch's head sends it; with nothing queued the lane is free. */
  private handOver(key: string, lane: Lane<I, A>): void {
    if (lane.queue.length === 0) {
      if (lane.inFlight === 0 && this.lanes.get(key) === lane) this.lanes.delete(key)
      return
    }
    if (lane.inFlight >= this.maxInFlight) return
    lane.inFlight++
    const batch = lane.queue.splice(0, this.maxBatch)
    for (const w of batch) w.batched = true
    for (let i = 1; i < batch.length; i++) batch[i]?.caller?.rode?.()
    batch[0]?.wake({ lead: batch })
  }
}

/** Answered as an overloaded object is (the gate's 503 with Retry-After). */
function stalled(): Error {
  return Object.assign(new Error('a batched verify was not answered in time'), { retryable: true })
}

function unwrap<A>(result: ItemResult<A>): A {
  if ('error' in result) throw result.error
  return result.answer
}
