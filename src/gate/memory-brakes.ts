/**
 * The brakes in the process's memory, for runtimes without Durable Objects (Node, Bun, Deno, a
 * single workerd isolate). The same objects as durableObjectBrakes() (one per client bucket, one
 * per user), deciding with the same BrakeState, composed in the same order (composeBrakes()).
 *
 * Counts live in one process: several processes or instances behind one name each count apart, so
 * a guesser spread over them gets each one's allowance; a restart forgets every count.
 *
 * Bounded: at most `maxObjects` objects. Drained rows are swept lazily, at most once a minute, by
 * the next call (no timer keeps the process alive). When the store is full, the objects that would
 * be empty soonest are evicted (a hundredth of the store at once, so a flood of new objects does
 * not rescan it every time). Eviction only forgets counts (no replay guard lives here), yet for a
 * guesser a forgotten counter starts again at zero. Soonest-empty means a guesser's own fresh
 * objects (one attempt, drained within minutes) go long before a counter it has driven to its cap
 * (draining for up to 1.6 windows) or a user's known buckets (30 days): to reset a victim's
 * counter it must first fill the store with objects each fuller than that counter, on the order of
 * `maxObjects` × (threshold + 6) attempts, again for every reset. Forgetting a known bucket only
 * makes that user wait like everyone else.
 *
 * Size (V8, measured): an object with a counter or two takes about 0.8 KB (10,000: 8 MB). A bucket
 * that cycles user names keeps at most MEMORY_MAX_COUNTERS counters of about 200 bytes (6.4 KB), so
 * even a guesser holding thousands of buckets cannot push the store past `maxObjects` × 7 KB (about
 * 70 MB at the default).
 */
import type { BrakeStore, Counter } from './brake-policy.ts'
import {
  BrakeState,
  type BrakeStorage,
  type CallBudget,
  type KnownBucket,
  type Remaining,
  SWEEP_BATCH_SECONDS,
} from './brake-state.ts'
import { composeBrakes } from './brake-store.ts'

export interface MemoryBrakesOptions {
  /** Brake objects (bucket and user) kept at most; at least 2. Default 10,000. */
  maxObjects?: number
}

/** What one brake object holds. */
export interface BrakeRows {
  counters: Array<Counter & { key: string; emptyAt: number }>
  budget: CallBudget | undefined
  known: KnownBucket[]
}

export interface MemoryBrakeStore extends BrakeStore {
  /** Brake objects held now. */
  readonly size: number
  /**
   * What the object named `name` (`bucket:` + bucket, `user:` + JSON of realm and user) holds;
   * empty if there is none. Reads only, for tests and diagnostics.
   */
  inspect(name: string): BrakeRows
}

export const DEFAULT_MAX_BRAKE_OBJECTS = 10_000

/**
 * Counters one object keeps in memory (the Durable Object keeps 512): a bucket cycling user names
 * evicts its per-user counters sooner, while its own counter over all users keeps braking it.
 */
export const MEMORY_MAX_COUNTERS = 32

export function memoryBrakes(options: MemoryBrakesOptions = {}): MemoryBrakeStore {
  const maxObjects = options.maxObjects ?? DEFAULT_MAX_BRAKE_OBJECTS
  if (!Number.isInteger(maxObjects) || maxObjects < 2) {
    // An attempt touches two objects: with fewer, each would evict the other.
    throw new RangeError(`memoryBrakes: maxObjects must be an integer >= 2, not ${maxObjects}`)
  }
  const objects = new MemoryBrakeObjects(maxObjects)
  const store = composeBrakes((name, now) => objects.get(name, now))
  return {
    ...store,
    get size() {
      return objects.size
    },
    inspect: (name) => objects.inspect(name),
  }
}

interface MemoryObject {
  storage: MemoryBrakeStorage
  state: BrakeState
}

/** The objects by name, bounded, swept as they are used. */
class MemoryBrakeObjects {
  private readonly objects = new Map<string, MemoryObject>()
  private readonly maxObjects: number
  private nextSweep = Number.NEGATIVE_INFINITY

  constructor(maxObjects: number) {
    this.maxObjects = maxObjects
  }

  get size(): number {
    return this.objects.size
  }

  get(name: string, now: number): BrakeState {
    if (now >= this.nextSweep) this.sweep(now)
    let object = this.objects.get(name)
    if (!object) {
      if (this.objects.size >= this.maxObjects) this.makeRoom(now)
      const storage = new MemoryBrakeStorage()
      object = { storage, state: new BrakeState(storage, MEMORY_MAX_COUNTERS) }
      this.objects.set(name, object)
    }
    return object.state
  }

  inspect(name: string): BrakeRows {
    const s = this.objects.get(name)?.storage
    return {
      counters: s ? [...s.counters].map(([key, c]) => ({ key, ...c })) : [],
      budget: s?.budget(),
      known: s?.knownBuckets() ?? [],
    }
  }

  /** Sweep every object due by `now`; drop those left empty (or never written). */
  private sweep(now: number): void {
    this.nextSweep = now + SWEEP_BATCH_SECONDS
    for (const [name, { storage, state }] of this.objects) {
      if (storage.due !== undefined && storage.due > now) continue
      const left = state.sweep(now)
      if (left) storage.reset(left)
      else this.objects.delete(name)
    }
  }

  /**
   * Full: sweep what is due; if still full, evict the objects that would be empty soonest, a
   * hundredth of the store at once, so that a flood of new objects does not scan it each time.
   */
  private makeRoom(now: number): void {
    this.sweep(now)
    const excess = this.objects.size - this.maxObjects + 1
    if (excess <= 0) return
    const batch = Math.max(excess, Math.floor(this.maxObjects / 100))
    const soonest = [...this.objects]
      .map(([name, { storage }]) => ({ name, last: storage.last ?? Number.NEGATIVE_INFINITY }))
      .sort((a, b) => a.last - b.last)
      .slice(0, batch)
    for (const { name } of soonest) this.objects.delete(name)
  }
}

/** One object's rows in Maps. */
class MemoryBrakeStorage implements BrakeStorage {
  readonly counters = new Map<string, Counter & { emptyAt: number }>()
  private budgetRow: CallBudget | undefined
  private readonly known = new Map<string, number>()
  /** When the first row falls due for a sweep; undefined = none written yet. */
  due: number | undefined
  /** When the last row falls due: empty by then (refunds and evictions only bring it closer). */
  last: number | undefined

  counter(key: string): Counter | undefined {
    return this.counters.get(key)
  }

  putCounter(key: string, c: Counter, emptyAt: number): void {
    this.counters.set(key, { level: c.level, at: c.at, last: c.last, emptyAt })
  }

  deleteCounter(key: string): void {
    this.counters.delete(key)
  }

  counterCount(): number {
    return this.counters.size
  }

  evictCounters(n: number, keep: string): void {
    const first = [...this.counters]
      .filter(([key]) => key !== keep)
      .sort(([, a], [, b]) => a.emptyAt - b.emptyAt)
      .slice(0, n)
    for (const [key] of first) this.counters.delete(key)
  }

  sweepCounters(now: number): Remaining | undefined {
    let left: Remaining | undefined
    for (const [key, { emptyAt }] of this.counters) {
      if (emptyAt <= now) this.counters.delete(key)
      else if (!left) left = { first: emptyAt, last: emptyAt }
      else left = { first: Math.min(left.first, emptyAt), last: Math.max(left.last, emptyAt) }
    }
    return left
  }

  budget(): CallBudget | undefined {
    return this.budgetRow && { ...this.budgetRow }
  }

  putBudget(budget: CallBudget | undefined): void {
    this.budgetRow = budget && { ...budget }
  }

  knownBuckets(): KnownBucket[] {
    return [...this.known].map(([bucket, until]) => ({ bucket, until }))
  }

  knownUntil(bucket: string): number | undefined {
    return this.known.get(bucket)
  }

  putKnown(bucket: string, until: number): void {
    this.known.set(bucket, until)
  }

  deleteKnown(bucket: string): void {
    this.known.delete(bucket)
  }

  dueForSweep(at: number): void {
    this.due = this.due === undefined ? at : Math.min(this.due, at)
    this.last = this.last === undefined ? at : Math.max(this.last, at)
  }

  /** After a sweep: what is left falls due between these times. */
  reset(left: Remaining): void {
    this.due = left.first
    this.last = left.last
  }
}
