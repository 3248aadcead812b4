/**
 * The brakes backed by the Brake Durable Object: one object per client bucket, one per user.
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

export function durableObjectBrakes(ns: DurableObjectNamespace<Brake>): BrakeStore {
  const objects = (a: BrakeAttempt) => {
    const key = userKey(a)
    return { bucket: ns.getByName(`bucket:${a.bucket}`), user: ns.getByName(`user:${key}`), key }
  }
  const settle = async (a: BrakeAttempt, policy: BrakePolicy, verified: boolean) => {
    const { bucket, user, key } = objects(a)
    await Promise.all([
      bucket.refundToBucket(key, a.now, policy, false),
      user.settleForUser(a.bucket, a.now, policy, verified),
    ])
  }
  return {
    async admit(a, policy) {
      const { bucket, user, key } = objects(a)
      const first = await bucket.admitFromBucket(key, a.now, policy)
      if (!first.ok) return first
      let second: BrakeVerdict
      try {
        second = await user.admitForUser(a.bucket, a.now, policy)
      } catch (err) {
        await bucket.refundToBucket(key, a.now, policy, true).catch(() => {})
        throw err
      }
      if (second.ok) return second
      const next = await bucket
        .refundToBucket(key, a.now, policy, true)
        .catch((): BrakeVerdict => ({ ok: true }))
      return next.ok || next.retryAfter <= second.retryAfter
        ? second
        : { ...second, retryAfter: next.retryAfter }
    },
    succeeded: (a, policy) => settle(a, policy, true),
    undecided: (a, policy) => settle(a, policy, false),
    async recordFailure(a, policy) {
      const { bucket, user, key } = objects(a)
      const [fromBucket, forUser] = await Promise.all([
        bucket.failFromBucket(key, a.now, policy),
        user.failForUser(a.bucket, a.now, policy),
      ])
      if (fromBucket.ok) return forUser
      return forUser.ok || fromBucket.retryAfter >= forUser.retryAfter ? fromBucket : forUser
    },
  }
}

/** Realm and name as one unambiguous string (names may hold any character). */
function userKey(a: BrakeAttempt): string {
  return JSON.stringify([a.realm, a.user])
}
