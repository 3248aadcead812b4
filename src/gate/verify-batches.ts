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
 * settled: the first queued request is woken (its own promise, resolved from the other request,
 * runs on in its own context) and sends the batch itself. Each participant keeps its part alive
 * with its request's `waitUntil`, so that a client going away cannot strand the others.
 */

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

/** Items per call at most: a bounded message and a bounded synchronous run in the object. */
export const MAX_BATCH = 64

/** What wakes a queued item: its answer, or its turn to send the batch it heads. */
type Turn<I, A> = ItemResult<A> | { lead: Waiter<I, A>[] }

interface Waiter<I, A> {
  item: I
  caller: BatchCaller | undefined
  wake: (turn: Turn<I, A>) => void
}

const settled = () => {}

export class VerifyBatches<I, A> {
  /** Per key with a call in flight: the items that arrived since, in order. */
  private readonly lanes = new Map<string, Waiter<I, A>[]>()
  private readonly send: SendBatch<I, A>
  private readonly maxBatch: number

  constructor(send: SendBatch<I, A>, maxBatch = MAX_BATCH) {
    this.send = send
    this.maxBatch = Math.max(1, maxBatch)
  }

  /** `item`'s answer, sent at once when nothing for `key` is in flight, else with the next batch. */
  submit(key: string, item: I, caller?: BatchCaller): Promise<A> {
    const queue = this.lanes.get(key)
    let done: Promise<A>
    if (queue === undefined) {
      this.lanes.set(key, [])
      done = this.sendFrom(key, [{ item, caller, wake: settled }]).then(unwrap)
    } else {
      done = this.wait(key, queue, item, caller)
    }
    // Until the call settles and the next turn is handed on, every later item of `key` waits on it.
    caller?.waitUntil(done.catch(settled))
    return done
  }

  /** Items waiting for `key` now (tests, diagnostics). */
  queued(key: string): number {
    return this.lanes.get(key)?.length ?? 0
  }

  private async wait(
    key: string,
    queue: Waiter<I, A>[],
    item: I,
    caller: BatchCaller | undefined
  ): Promise<A> {
    const turn = await new Promise<Turn<I, A>>((wake) => {
      queue.push({ item, caller, wake })
    })
    if ('lead' in turn) return unwrap(await this.sendFrom(key, turn.lead))
    return unwrap(turn)
  }

  /**
   * Sends `batch` (its head is this request's own item) from this request, answers the others,
   * then hands the lane to the next queued item. A failed call fails every item alike.
   */
  private async sendFrom(key: string, batch: Waiter<I, A>[]): Promise<ItemResult<A>> {
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
    for (let i = 1; i < batch.length; i++)
      (batch[i] as Waiter<I, A>).wake(results[i] as ItemResult<A>)
    this.handOver(key)
    return results[0] as ItemResult<A>
  }

  /** The next batch's head sends it; with nothing queued the lane is free. */
  private handOver(key: string): void {
    const queue = this.lanes.get(key)
    if (queue === undefined) return
    if (queue.length === 0) {
      this.lanes.delete(key)
      return
    }
    const batch = queue.splice(0, this.maxBatch)
    for (let i = 1; i < batch.length; i++) batch[i]?.caller?.rode?.()
    batch[0]?.wake({ lead: batch })
  }
}

function unwrap<A>(result: ItemResult<A>): A {
  if ('error' in result) throw result.error
  return result.answer
}
