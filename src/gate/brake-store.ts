/**
 * The brakes as two kinds of object: one per client bucket, one per user (what each decides:
 * brake-state.ts). composeBrakes() puts them in order over any lookup of objects by name;
 * durableObjectBrakes() looks them up as Brake Durable Objects, memoryBrakes() in memory.
 *
 * An attempt is admitted by the bucket object first, then by the user object. Two objects cannot
 * decide atomically together, so the order is the contract: the bucket counts first (a flood from
 * one bucket stops there and never reaches the user's counter, which other buckets share); if the
 * user object then refuses, the bucket takes its count and its authority call back, and the
 * refusal announces the longer of the two waits. Between the two calls the bucket over-counts by
 * one, never under-counts.
 */
import type { Brake } from './brake.ts'
import type { BrakeAttempt, BrakePolicy, BrakeStore, BrakeVerdict } from './brake-policy.ts'

/** One brake object as the composition calls it: a BrakeState, or a Durable Object stub of one. */
export interface BrakeObject {
  admitFromBucket(user: string, now: number, policy: BrakePolicy): Answer<BrakeVerdict>
  refundToBucket(
    user: string,
    now: number,
    policy: BrakePolicy,
    returnCall: boolean
  ): Answer<BrakeVerdict>
  failFromBucket(user: string, now: number, policy: BrakePolicy): Answer<BrakeVerdict>
  admitForUser(bucket: string, now: number, policy: BrakePolicy): Answer<BrakeVerdict>
  settleForUser(bucket: string, now: number, policy: BrakePolicy, verified: boolean): Answer<void>
  failForUser(bucket: string, now: number, policy: BrakePolicy): Answer<BrakeVerdict>
}

/** An answer given at once (in memory) or over RPC. */
type Answer<T> = T | Promise<T>

/**
 * The object named `name`, as of `now` (Unix seconds). Looked up for every call, never kept
 * across an await: a store in memory may have swept or evicted it in between.
 */
export type BrakeObjects = (name: string, now: number) => BrakeObject

export function durableObjectBrakes(ns: DurableObjectNamespace<Brake>): BrakeStore {
  return composeBrakes((name) => ns.getByName(name))
}

/** The brakes over brake objects found by name: `bucket:` + bucket, `user:` + userKey(). */
export function composeBrakes(objects: BrakeObjects): BrakeStore {
  const bucket = (a: BrakeAttempt) => objects(`bucket:${a.bucket}`, a.now)
  const user = (a: BrakeAttempt) => objects(`user:${userKey(a)}`, a.now)
  const refund = (a: BrakeAttempt, policy: BrakePolicy, returnCall: boolean) =>
    call(() => bucket(a).refundToBucket(userKey(a), a.now, policy, returnCall))
  const settle = async (a: BrakeAttempt, policy: BrakePolicy, verified: boolean) => {
    await Promise.all([
      refund(a, policy, false),
      call(() => user(a).settleForUser(a.bucket, a.now, policy, verified)),
    ])
  }
  return {
    async admit(a, policy) {
      const first = await bucket(a).admitFromBucket(userKey(a), a.now, policy)
      if (first.kind === 'braked') return first
      let second: BrakeVerdict
      try {
        second = await user(a).admitForUser(a.bucket, a.now, policy)
      } catch (err) {
        await refund(a, policy, true).catch(() => {})
        throw err
      }
      if (second.kind === 'admitted') return second
      const next = await refund(a, policy, true).catch((): BrakeVerdict => ({ kind: 'admitted' }))
      return next.kind === 'admitted' || next.retryAfter <= second.retryAfter
        ? second
        : { ...second, retryAfter: next.retryAfter }
    },
    succeeded: (a, policy) => settle(a, policy, true),
    undecided: (a, policy) => settle(a, policy, false),
    async recordFailure(a, policy) {
      const [fromBucket, forUser] = await Promise.all([
        call(() => bucket(a).failFromBucket(userKey(a), a.now, policy)),
        call(() => user(a).failForUser(a.bucket, a.now, policy)),
      ])
      if (fromBucket.kind === 'admitted') return forUser
      return forUser.kind === 'admitted' || fromBucket.retryAfter >= forUser.retryAfter
        ? fromBucket
        : forUser
    },
  }
}

/** Calls `f` so that a synchronous throw (an object in memory) rejects like a failed RPC. */
async function call<T>(f: () => T | Promise<T>): Promise<T> {
  return f()
}

/** Realm and name as one unambiguous string (names may hold any character). */
function userKey(a: BrakeAttempt): string {
  return JSON.stringify([a.realm, a.user])
}
