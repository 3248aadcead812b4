/**
 * Replay mode `off` keeps no nc state, so a later request needs nothing the Durable Object alone
 * can give: verified contexts are cached in the isolate for a short time and checked there with no
 * storage call. Entries live at most CACHE_SECONDS, which bounds how late a revocation bites.
 */
import type { CachedContext } from './context-check.ts'

export const CACHE_SECONDS = 30
const MAX_ENTRIES = 10_000

interface Entry {
  context: CachedContext
  until: number
}

export class IsolateContextCache {
  private readonly entries = new Map<string, Entry>()

  get(handle: string, now: number): CachedContext | undefined {
    const e = this.entries.get(handle)
    if (!e) return undefined
    if (now >= e.until) {
      this.entries.delete(handle)
      return undefined
    }
    return e.context
  }

  put(handle: string, context: CachedContext, now: number, revalidateAfter: number): void {
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
    this.entries.delete(handle)
    this.entries.set(handle, { context, until })
  }

  delete(handle: string): void {
    this.entries.delete(handle)
  }
}
