/**
 * The brakes' contract (BrakeStore), their policy and the arithmetic of one counter, kept pure so
 * that the stores only store, and the documented rates follow from one place.
 *
 * A counter holds a level: +1 per attempt, draining steadily (`threshold` attempts per
 * `windowSeconds`), so a busy shared address forgets its users' typos as fast as they come.
 * Below the threshold attempts pass at once; at or above it each attempt must wait after the
 * previous one, 1 s, 2 s, 4 s … up to `maxDelaySeconds`. A counter never refuses for longer than
 * that: a guesser is slowed, and a real user who mistyped gets in after at most the announced wait.
 */

export interface BrakePolicy {
  /** Failed attempts for one user from one client bucket before the backoff starts. */
  userFailures: number
  /** Failed attempts from one client bucket, all users together, before the backoff starts. */
  clientFailures: number
  /** Failed attempts for one user from all buckets together (known buckets exempt). */
  userGlobalFailures: number
  /** Seconds in which a counter drains its threshold's worth of attempts. */
  windowSeconds: number
  /** The longest wait between two attempts of a braked counter. */
  maxDelaySeconds: number
  /** Initial authentications (authority calls) one bucket may start per minute. */
  authorityCallsPerMinute: number
  /**
   * Seconds a bucket stays known for a user after a login there: attempts from it skip the
   * user's counter over all buckets (they are still counted). 0 = no bucket is ever known.
   */
  knownClientSeconds: number
}

export const DEFAULT_BRAKE_POLICY: BrakePolicy = {
  userFailures: 10,
  clientFailures: 50,
  userGlobalFailures: 20,
  windowSeconds: 900,
  maxDelaySeconds: 60,
  authorityCallsPerMinute: 60,
  knownClientSeconds: 30 * 86_400,
}

export type BrakeReason =
  | 'user_failures'
  | 'client_failures'
  | 'user_global_failures'
  | 'authority_rate'

export type BrakeVerdict =
  | { kind: 'admitted' }
  | { kind: 'braked'; retryAfter: number; reason: BrakeReason }

/** One attempt to authenticate, as the brakes count it. */
export interface BrakeAttempt {
  /** clientBucket() of the client's address and CF-Worker header. */
  bucket: string
  realm: string
  /** The user name as the client sent it (with userhash, the hash). */
  user: string
  /** Unix seconds (fractional: waits are measured in milliseconds). */
  now: number
}

/**
 * Counters against guessing: per bucket and user, per bucket, per user over all buckets, and each
 * bucket's budget of authority calls. An admitted attempt counts as a failure at once, so parallel
 * attempts cannot outrun the counters; only an answer from the authority takes it back.
 */
export interface BrakeStore {
  /** Admit one initial authentication (an authority call): counted now, or refused uncounted. */
  admit(attempt: BrakeAttempt, policy: BrakePolicy): Promise<BrakeVerdict>
  /** The admitted attempt verified: take it back (that one only) and know its bucket for the user. */
  succeeded(attempt: BrakeAttempt, policy: BrakePolicy): Promise<void>
  /** The authority could not answer (fault): take the attempt back, not its authority call. */
  undecided(attempt: BrakeAttempt, policy: BrakePolicy): Promise<void>
  /**
   * A failure decided without an admission (a wrong response against a cached session key):
   * counted in the same counters. Answers what the next attempt would be told.
   */
  recordFailure(attempt: BrakeAttempt, policy: BrakePolicy): Promise<BrakeVerdict>
}

/** One counter's state. Times are Unix seconds. */
export interface Counter {
  /** Attempts counted and not yet drained, as of `at`. */
  level: number
  at: number
  /** When the last attempt was counted: the backoff runs from here. */
  last: number
}

/** The level at `now`, after draining since the last write. */
export function levelAt(c: Counter, threshold: number, now: number, policy: BrakePolicy): number {
  const drained = (Math.max(0, now - c.at) * threshold) / policy.windowSeconds
  return Math.max(0, c.level - drained)
}

/** Seconds before the counter lets another attempt through; 0 = now. */
export function waitFor(
  c: Counter | undefined,
  threshold: number,
  now: number,
  policy: BrakePolicy
): number {
  if (!c) return 0
  const level = levelAt(c, threshold, now, policy)
  if (level < threshold) return 0
  return Math.max(0, c.last + delayAfter(level - threshold, policy) - now)
}

/**
 * The wait after an attempt that left the counter `excess` above its threshold: 1 s at the
 * threshold, doubling with each attempt beyond it (rounded up, so draining in the meantime does
 * not repeat a step), at most `maxDelaySeconds`.
 */
export function delayAfter(excess: number, policy: BrakePolicy): number {
  return Math.min(policy.maxDelaySeconds, 2 ** Math.ceil(excess))
}

/** The counter after one more attempt at `now`. */
export function counted(
  c: Counter | undefined,
  threshold: number,
  now: number,
  policy: BrakePolicy
): Counter {
  const level = c ? levelAt(c, threshold, now, policy) : 0
  return { level: Math.min(level + 1, levelCap(threshold, policy)), at: now, last: now }
}

/**
 * The counter with one attempt taken back; undefined = nothing left. The time of the last attempt
 * stays: a refund shortens no wait already running from it.
 */
export function refunded(
  c: Counter | undefined,
  threshold: number,
  now: number,
  policy: BrakePolicy
): Counter | undefined {
  if (!c) return undefined
  const level = levelAt(c, threshold, now, policy) - 1
  return level > 0 ? { level, at: now, last: c.last } : undefined
}

/**
 * The level never goes higher: above one step below it the wait is at its cap already, and
 * counting on would only make the recovery after an attack longer.
 */
export function levelCap(threshold: number, policy: BrakePolicy): number {
  return threshold + Math.max(1, Math.ceil(Math.log2(policy.maxDelaySeconds)))
}

/** When the counter will have drained to nothing. */
export function emptyAt(c: Counter, threshold: number, policy: BrakePolicy): number {
  return c.at + Math.ceil((c.level * policy.windowSeconds) / threshold)
}

/**
 * The most attempts one counter lets through in `seconds`, whatever the guesser's timing (refunds
 * aside: only a verified login earns one, or a fault that told the client nothing). An attempt
 * raises the level by a whole step unless the level is within one step of the cap: whole steps
 * are bounded by the cap plus what drains, and near the cap the wait is at its longest, so those
 * attempts come one per `maxDelaySeconds`.
 */
export function maxAttempts(threshold: number, policy: BrakePolicy, seconds: number): number {
  return (
    levelCap(threshold, policy) +
    1 +
    seconds * (threshold / policy.windowSeconds + 1 / policy.maxDelaySeconds)
  )
}
