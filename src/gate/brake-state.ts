/**
 * What one brake object decides, whatever holds its rows: the Brake Durable Object keeps them in
 * SQLite (brake.ts), memoryBrakes() in the process's memory (memory-brakes.ts). One logic, so both
 * count, refuse, evict and forget alike.
 *
 * Two kinds of object (named by composeBrakes(), brake-store.ts):
 * - a bucket object, one per client bucket: the bucket's counter over all users, one counter per
 *   user tried from it, and its budget of authority calls;
 * - a user object, one per realm and user name: the user's counter over all buckets, and the
 *   buckets the user recently logged in from (known: their attempts skip that counter's check).
 * Every method reads, decides and writes in one synchronous block over a synchronous storage, so
 * parallel attempts cannot all pass one check. Counters drain (brake-policy.ts); sweep() deletes
 * what has drained and tells the storage what is left.
 */
import {
  type BrakePolicy,
  type BrakeReason,
  type BrakeVerdict,
  type Counter,
  counted,
  delayAfter,
  emptyAt,
  levelAt,
  refunded,
  waitFor,
} from './brake-policy.ts'

/** The key of the object's own counter: the bucket's over all users, or the user's over all buckets. */
export const ALL = '*'

/**
 * Counters one object keeps at most. A guesser cycling user names from one bucket first evicts
 * its own rows: the eviction takes the row closest to draining, and the bucket's own counter
 * (never evicted) keeps slowing it meanwhile.
 */
export const MAX_COUNTERS = 512

/** Known buckets kept per user; the least recently confirmed goes first. */
export const MAX_KNOWN = 16

/** Sweeps run at most this often: rows drained a little late cost nothing. */
export const SWEEP_BATCH_SECONDS = 60

/** The authority-call budget is counted per minute from its first call. */
const BUDGET_SECONDS = 60

/** A bucket's authority calls in the current minute. */
export interface CallBudget {
  count: number
  /** When the minute began (the first call's time). */
  since: number
}

export interface KnownBucket {
  bucket: string
  /** Known until then (Unix seconds). */
  until: number
}

/** When the rows left after a sweep fall due: the first of them, and the last. */
export interface Remaining {
  first: number
  last: number
}

/**
 * The rows of one object: its counters by key, its budget (one row or none) and its known
 * buckets. Synchronous, so a decision is never split by an await. Times are Unix seconds.
 */
export interface BrakeStorage {
  counter(key: string): Counter | undefined
  /** Write a counter, with the time it will have drained to nothing. */
  putCounter(key: string, counter: Counter, emptyAt: number): void
  deleteCounter(key: string): void
  counterCount(): number
  /** Delete the `n` counters that drain first, never the one keyed `keep`. */
  evictCounters(n: number, keep: string): void
  /** Delete the counters drained by `now`; answer when the remaining ones drain. */
  sweepCounters(now: number): Remaining | undefined
  budget(): CallBudget | undefined
  /** Write the budget row; undefined deletes it. */
  putBudget(budget: CallBudget | undefined): void
  knownBuckets(): KnownBucket[]
  knownUntil(bucket: string): number | undefined
  putKnown(bucket: string, until: number): void
  deleteKnown(bucket: string): void
  /** A row just written falls due at `at`: sweep() should run by then (or soon after). */
  dueForSweep(at: number, now: number): void
}

/** A counter (or the call budget) began to brake, or its end moved later (BrakeEvents). */
export interface Throttle {
  /** The counter's key: ALL (the object's own) or a user's key (JSON of realm and name). */
  key: string
  reason: BrakeReason
  /** Unix seconds: when it stops braking unless more attempts are counted. */
  until: number
  /** Unix seconds: the earliest the next attempt is admitted. */
  nextAttempt: number
}

/**
 * What an object tells an observer (the console's index): when a counter goes into braking,
 * and when a braking counter's end moves more than RETHROTTLE_SECONDS past what was told. Rare:
 * counted attempts of a braking counter are spaced by its own backoff.
 */
export interface BrakeEvents {
  throttled(t: Throttle): void
}

/** A braking counter is reported again once its end moved this much later. */
export const RETHROTTLE_SECONDS = 60

export class BrakeState {
  private readonly storage: BrakeStorage
  private readonly maxCounters: number
  private readonly events: BrakeEvents | undefined
  /** The `until` last reported per braking key (in memory; bounded by the counters). */
  private readonly told = new Map<string, number>()

  /**
   * `maxCounters`: counters one object keeps at most (its own always among them); `events`: who
   * hears of throttles.
   */
  constructor(storage: BrakeStorage, maxCounters = MAX_COUNTERS, events?: BrakeEvents) {
    this.storage = storage
    this.maxCounters = maxCounters
    this.events = events
  }

  // ---- Bucket objects. `user` is the user's key (JSON of realm and name), never ALL.

  /** Admit one attempt for `user` from this bucket: checked and counted, or refused uncounted. */
  admitFromBucket(user: string, now: number, policy: BrakePolicy): BrakeVerdict {
    const verdict = this.bucketVerdict(user, now, policy)
    if (verdict.kind === 'braked') return verdict
    this.count(ALL, policy.clientFailures, now, policy, 'client_failures')
    this.count(user, policy.userFailures, now, policy, 'user_failures')
    this.spendCall(now, policy)
    return verdict
  }

  /**
   * Take back one admitted attempt; with `returnCall`, its authority call too (it never happened).
   * Answers what the next attempt would be told.
   */
  refundToBucket(
    user: string,
    now: number,
    policy: BrakePolicy,
    returnCall: boolean
  ): BrakeVerdict {
    this.refund(ALL, policy.clientFailures, now, policy)
    this.refund(user, policy.userFailures, now, policy)
    if (returnCall) this.returnCall(now)
    return this.bucketVerdict(user, now, policy)
  }

  /** Count a failure that was not admitted first; answers what the next attempt would be told. */
  failFromBucket(user: string, now: number, policy: BrakePolicy): BrakeVerdict {
    this.count(ALL, policy.clientFailures, now, policy, 'client_failures')
    this.count(user, policy.userFailures, now, policy, 'user_failures')
    return this.bucketVerdict(user, now, policy)
  }

  // ---- User objects.

  /** Admit one attempt for this user from `bucket`: checked (unless known) and counted. */
  admitForUser(bucket: string, now: number, policy: BrakePolicy): BrakeVerdict {
    const verdict = this.userVerdict(bucket, now, policy)
    if (verdict.kind === 'admitted') {
      this.count(ALL, policy.userGlobalFailures, now, policy, 'user_global_failures')
    }
    return verdict
  }

  /** Take back one admitted attempt; a verified one also makes `bucket` known for this user. */
  settleForUser(bucket: string, now: number, policy: BrakePolicy, verified: boolean): void {
    this.refund(ALL, policy.userGlobalFailures, now, policy)
    if (verified && policy.knownClientSeconds > 0) {
      this.remember(bucket, now + policy.knownClientSeconds, now)
    }
  }

  /** Count a failure that was not admitted first; answers what the next attempt would be told. */
  failForUser(bucket: string, now: number, policy: BrakePolicy): BrakeVerdict {
    this.count(ALL, policy.userGlobalFailures, now, policy, 'user_global_failures')
    return this.userVerdict(bucket, now, policy)
  }

  // ---- Sweeping.

  /**
   * Delete what has drained or expired by `now`. Answers when what is left falls due;
   * undefined = nothing is left, the object may be emptied.
   */
  sweep(now: number): Remaining | undefined {
    const s = this.storage
    let left = s.sweepCounters(now)
    const budget = s.budget()
    if (budget && budget.since + BUDGET_SECONDS <= now) s.putBudget(undefined)
    else if (budget) left = widen(left, budget.since + BUDGET_SECONDS)
    for (const { bucket, until } of s.knownBuckets()) {
      if (until <= now) s.deleteKnown(bucket)
      else left = widen(left, until)
    }
    return left
  }

  // ---- Internals.

  private bucketVerdict(user: string, now: number, policy: BrakePolicy): BrakeVerdict {
    return longest([
      this.check(ALL, policy.clientFailures, now, policy, 'client_failures'),
      this.check(user, policy.userFailures, now, policy, 'user_failures'),
      this.checkCalls(now, policy),
    ])
  }

  private userVerdict(bucket: string, now: number, policy: BrakePolicy): BrakeVerdict {
    if (this.isKnown(bucket, now)) return { kind: 'admitted' }
    return this.check(ALL, policy.userGlobalFailures, now, policy, 'user_global_failures')
  }

  private check(
    key: string,
    threshold: number,
    now: number,
    policy: BrakePolicy,
    reason: BrakeReason
  ): BrakeVerdict {
    const wait = waitFor(this.storage.counter(key), threshold, now, policy)
    // Times may be fractional (ms precision); Retry-After is whole seconds, never less than the wait.
    return wait > 0 ? { kind: 'braked', retryAfter: Math.ceil(wait), reason } : { kind: 'admitted' }
  }

  private count(
    key: string,
    threshold: number,
    now: number,
    policy: BrakePolicy,
    reason: BrakeReason
  ): void {
    const before = this.storage.counter(key)
    if (!before && key !== ALL) this.makeRoom()
    const after = counted(before, threshold, now, policy)
    this.write(key, after, threshold, policy, now)
    if (this.events) this.noteThrottle(key, reason, after, threshold, now, policy)
  }

  /**
   * Tell the observer when this counter went into braking (its level at or above the threshold),
   * or when a braking counter's end moved well past what it was told.
   */
  private noteThrottle(
    key: string,
    reason: BrakeReason,
    c: Counter,
    threshold: number,
    now: number,
    policy: BrakePolicy
  ): void {
    const tellKey = `${reason} ${key}`
    // At or above the threshold the next attempt waits (brake-policy.ts, waitFor).
    const excess = levelAt(c, threshold, now, policy) - threshold
    if (excess < 0) {
      this.told.delete(tellKey)
      return
    }
    const nextAttempt = Math.ceil(c.last + delayAfter(excess, policy))
    // Braking ends once the level has drained below the threshold and the last wait is over.
    const until = Math.max(
      nextAttempt,
      Math.ceil(now + (excess * policy.windowSeconds) / threshold)
    )
    const told = this.told.get(tellKey)
    if (told !== undefined && told > now && until < told + RETHROTTLE_SECONDS) return
    this.tell(tellKey, { key, reason, until, nextAttempt })
  }

  private tell(tellKey: string, t: Throttle): void {
    this.told.delete(tellKey)
    if (this.told.size >= this.maxCounters) {
      const oldest = this.told.keys().next().value
      if (oldest !== undefined) this.told.delete(oldest)
    }
    this.told.set(tellKey, t.until)
    this.events?.throttled(t)
  }

  private refund(key: string, threshold: number, now: number, policy: BrakePolicy): void {
    const after = refunded(this.storage.counter(key), threshold, now, policy)
    if (after) this.write(key, after, threshold, policy, now)
    else this.storage.deleteCounter(key)
  }

  private write(
    key: string,
    c: Counter,
    threshold: number,
    policy: BrakePolicy,
    now: number
  ): void {
    const empty = emptyAt(c, threshold, policy)
    this.storage.putCounter(key, c, empty)
    this.storage.dueForSweep(empty, now)
  }

  /** Before a new counter: evict the one closest to draining if the object is full. */
  private makeRoom(): void {
    const rows = this.storage.counterCount()
    if (rows >= this.maxCounters) this.storage.evictCounters(rows - this.maxCounters + 1, ALL)
  }

  private checkCalls(now: number, policy: BrakePolicy): BrakeVerdict {
    const budget = this.callWindow(now)
    if (!budget || budget.count < policy.authorityCallsPerMinute) return { kind: 'admitted' }
    const retryAfter = Math.max(1, Math.ceil(budget.since + BUDGET_SECONDS - now))
    return { kind: 'braked', retryAfter, reason: 'authority_rate' }
  }

  private spendCall(now: number, policy: BrakePolicy): void {
    const budget = this.callWindow(now)
    const since = budget?.since ?? now
    const count = (budget?.count ?? 0) + 1
    this.storage.putBudget({ count, since })
    this.storage.dueForSweep(since + BUDGET_SECONDS, now)
    // The call that uses up the minute's budget: the next ones wait for the minute's end.
    if (this.events && count === policy.authorityCallsPerMinute) {
      const until = Math.ceil(since + BUDGET_SECONDS)
      this.tell(`authority_rate ${ALL}`, {
        key: ALL,
        reason: 'authority_rate',
        until,
        nextAttempt: until,
      })
    }
  }

  private returnCall(now: number): void {
    const budget = this.callWindow(now)
    if (budget && budget.count > 0) {
      this.storage.putBudget({ count: budget.count - 1, since: budget.since })
    }
  }

  /** The current minute's authority calls; undefined once that minute is over. */
  private callWindow(now: number): CallBudget | undefined {
    const budget = this.storage.budget()
    return budget && now < budget.since + BUDGET_SECONDS ? budget : undefined
  }

  private isKnown(bucket: string, now: number): boolean {
    const until = this.storage.knownUntil(bucket)
    return until !== undefined && now < until
  }

  private remember(bucket: string, until: number, now: number): void {
    const s = this.storage
    s.putKnown(bucket, until)
    const known = s.knownBuckets()
    if (known.length > MAX_KNOWN) {
      known.sort((a, b) => b.until - a.until)
      for (const { bucket: stale } of known.slice(MAX_KNOWN)) s.deleteKnown(stale)
    }
    s.dueForSweep(until, now)
  }
}

/** Admitted if every check passes; else the refusal that waits longest, so waiting it passes them all. */
function longest(verdicts: BrakeVerdict[]): BrakeVerdict {
  let worst: BrakeVerdict = { kind: 'admitted' }
  for (const v of verdicts) {
    if (v.kind === 'braked' && (worst.kind === 'admitted' || v.retryAfter > worst.retryAfter))
      worst = v
  }
  return worst
}

function widen(r: Remaining | undefined, at: number): Remaining {
  return r ? { first: Math.min(r.first, at), last: Math.max(r.last, at) } : { first: at, last: at }
}
