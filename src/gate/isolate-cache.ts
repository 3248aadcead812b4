/**
 * Replay mode `off` keeps no nc state, so a later request needs nothing the Durable Object alone
 * can give: verified contexts are cached in the isolate for a short time and checked there with no
 * storage call. Entries live at most CACHE_SECONDS, which bounds how late a revocation bites.
 * An entry serves only the client bucket whose request filled it: a guesser elsewhere always
 * reaches the Durable Object, which counts wrong answers and asks the brakes.
 */
import type { CachedContext } from './context-types.ts'

export const CACHE_SECONDS = 30
const MAX_ENTRIES = 10_000

interface Entry {
  context: CachedContext
  until: number
}

export class IsolateContextCache {
  private readonly entries = new Map<string, Entry>()

  get(handle: string, bucket: string, now: number): CachedContext | undefined {
    const key = keyOf(handle, bucket)
    const e = this.entries.get(key)
    if (!e) return undefined
    if (now >= e.until) {
      this.entries.delete(key)
      return undefined
    }
    return e.context
  }

  put(
    handle: string,
    bucket: string,
    context: CachedContext,
    now: number,
    revalidateAfter: number
  ): void {
    if (this.entries.size >= MAX_ENTRIES) {
      // Oldest first: Map keeps insertion order.
      const oldest = this.entries.keys().next().value
      if (oldest !== undefined) this.entries.delete(oldest)
    }
    const until = Math.min(
      now + CACHE_SECONDS,
      context.verifiedAt + revalidateAfter,
      context.expires
    )
    const key = keyOf(handle, bucket)
    this.entries.delete(key)
    this.entries.set(key, { context, until })
  }

  delete(handle: string, bucket: string): void {
    this.entries.delete(keyOf(handle, bucket))
  }
}

/** Handles are base64url, so a space cannot occur in them. */
const keyOf = (handle: string, bucket: string) => `${handle} ${bucket}`
