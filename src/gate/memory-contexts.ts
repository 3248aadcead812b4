/**
 * Security contexts in this process's memory: the simple form's default store, for a Hono app on
 * any runtime. The same logic as the Durable Objects (ContextState); replay protection holds
 * within the process (a Worker isolate, a Node process) — on Cloudflare, where requests spread over
 * many isolates, use durableObjectContexts().
 *
 * Bounded: at most `maxContexts` contexts. A context is dropped only once nothing in it can still
 * matter (its session ended and every nonce it recorded has expired); when the store is full of
 * live ones, new logins are refused (503) rather than forgetting what guards against replays.
 * `maxContextsPerUser` bounds one user's share, so that one password cannot fill it.
 */
import {
  ContextState,
  type ContextStorage,
  FAILURE_WINDOW_SECONDS,
  type StoredNonce,
} from './context-state.ts'
import type { CachedContext, ContextStore } from './context-types.ts'

export interface MemoryContextsOptions {
  /** Contexts kept at most. @default 10000 */
  maxContexts?: number
  /**
   * Contexts one user (realm and name) may hold at most; past it that user's new logins get 503.
   * Each login without an opaque (one curl run) makes a context, kept until its session ends and
   * its nonces expire: a script running curl every second holds about 1,800. Without this bound
   * one user's password can fill the store (10,000 logins take 7 s under Node) and hold every
   * other user's new login at 503 for the idle timeout. @default maxContexts
   */
  maxContextsPerUser?: number
}

/** Thrown by establish() when the store is full of live contexts (the gate answers 503). */
export class ContextStoreFullError extends Error {
  override readonly name = 'ContextStoreFullError'
}

/** Bound on the buckets whose wrong answers one context counts. */
const MAX_FAILURE_ROWS = 256

/** How often full sweeps run at most, in seconds (each entry also sweeps when touched). */
const SWEEP_INTERVAL_SECONDS = 60

interface Entry {
  state: ContextState
  /** When the entry next needs a sweep (Unix seconds); undefined = never scheduled. */
  sweepAt: number | undefined
}

interface UserIndex {
  handles: Map<string, number>
  /** Unix ms of the last revocation. */
  revokedAt?: number
}

export function memoryContexts(options: MemoryContextsOptions = {}): ContextStore {
  const maxContexts = options.maxContexts ?? 10_000
  const maxPerUser = options.maxContextsPerUser ?? maxContexts
  for (const [name, n] of [
    ['maxContexts', maxContexts],
    ['maxContextsPerUser', maxPerUser],
  ] as const) {
    if (!(Number.isSafeInteger(n) && n >= 1)) {
      throw new RangeError(`memoryContexts: ${name} must be an integer >= 1, not ${n}`)
    }
  }
  const entries = new Map<string, Entry>()
  const users = new Map<string, UserIndex>()
  let lastSweep = 0

  const entryOf = (handle: string, create: boolean, now: number): Entry | undefined => {
    let entry = entries.get(handle)
    if (entry && entry.sweepAt !== undefined && entry.sweepAt <= now) {
      if (sweepEntry(handle, entry, now)) entry = undefined
    }
    if (entry || !create) return entry
    if (entries.size >= maxContexts) sweepAll(now, true)
    if (entries.size >= maxContexts) {
      throw new ContextStoreFullError(`memoryContexts: ${maxContexts} live contexts`)
    }
    const created: Entry = { state: undefined as unknown as ContextState, sweepAt: undefined }
    created.state = new ContextState(new MemoryStorage(), {
      alarmAt: (at) => {
        created.sweepAt = created.sweepAt === undefined ? at : Math.min(created.sweepAt, at)
      },
      // Memory is the storage: there is nothing to flush.
      flushSoon: () => {},
    })
    entries.set(handle, created)
    return created
  }

  /** True when the entry was dropped. */
  const sweepEntry = (handle: string, entry: Entry, now: number): boolean => {
    const swept = entry.state.sweep(now)
    if (swept.kind === 'empty') {
      entries.delete(handle)
      return true
    }
    entry.sweepAt = swept.next
    return false
  }

  const sweepAll = (now: number, force = false) => {
    if (!force && now - lastSweep < SWEEP_INTERVAL_SECONDS) return
    lastSweep = now
    for (const [handle, entry] of entries) {
      if (entry.sweepAt !== undefined && entry.sweepAt <= now) sweepEntry(handle, entry, now)
    }
    for (const [key, index] of users) {
      for (const [handle, expires] of index.handles)
        if (expires <= now) index.handles.delete(handle)
      if (index.handles.size === 0 && (index.revokedAt ?? 0) <= (now - 3600) * 1000) {
        users.delete(key)
      }
    }
  }

  const userIndex = (realm: string, user: string): UserIndex => {
    const key = JSON.stringify([realm, user])
    let index = users.get(key)
    if (!index) {
      index = { handles: new Map() }
      users.set(key, index)
    }
    return index
  }

  return {
    async verify(handle, req, policy) {
      sweepAll(req.now)
      const entry = entryOf(handle, false, req.now)
      // No entry, no storage: a stranger's fresh nonce leaves nothing behind.
      if (!entry) return { kind: 'ask_authority', reason: 'no_context' }
      return entry.state.verify(req, policy)
    },
    async establish(handle, req, policy) {
      const index = userIndex(req.realm, req.principal.name)
      if (index.revokedAt !== undefined && index.revokedAt > req.startedAt)
        return { kind: 'revoked' }
      if (maxPerUser < maxContexts && !entries.has(handle)) {
        let live = 0
        for (const h of index.handles.keys()) if (entryOf(h, false, req.now)) live++
        if (live >= maxPerUser) {
          throw new ContextStoreFullError(`memoryContexts: a user holds ${live} live contexts`)
        }
      }
      const entry = entryOf(handle, true, req.now) as Entry
      const answer = entry.state.establish(req, policy)
      if (answer.kind !== 'taken' && answer.kind !== 'revoked') {
        index.handles.set(handle, req.now + policy.maxLifetime)
      }
      return answer
    },
    async revalidated(handle, principal, now) {
      return entryOf(handle, false, now)?.state.revalidated(principal, now) ?? false
    },
    async revoke(handle, now, policy) {
      return (entryOf(handle, true, now) as Entry).state.revoke(now, policy)
    },
    async revokeUser(realm, user, now, policy) {
      const index = userIndex(realm, user)
      index.revokedAt = Date.now()
      let revoked = 0
      for (const handle of index.handles.keys()) {
        if (entryOf(handle, false, now)?.state.revoke(now, policy)) revoked++
      }
      index.handles.clear()
      return revoked
    },
  }
}

/** One context's rows in plain maps. */
class MemoryStorage implements ContextStorage {
  private row: CachedContext | null = null
  private readonly nonces = new Map<string, StoredNonce>()
  private readonly failures = new Map<string, { count: number; since: number }>()

  readRow(): CachedContext | null {
    return this.row
  }

  writeRow(row: CachedContext): void {
    this.row = { ...row }
  }

  readNonce(nonce: string): StoredNonce | undefined {
    const stored = this.nonces.get(nonce)
    return stored && { ...stored, state: { ...stored.state, seen: stored.state.seen.slice() } }
  }

  writeNonce(nonce: string, stored: StoredNonce): void {
    this.nonces.set(nonce, {
      state: { highest: stored.state.highest, seen: stored.state.seen.slice() },
      reserved: stored.reserved,
      expires: stored.expires,
    })
  }

  sweepNonces(now: number): number | undefined {
    let next: number | undefined
    for (const [nonce, stored] of this.nonces) {
      if (stored.expires <= now) this.nonces.delete(nonce)
      else next = next === undefined ? stored.expires : Math.min(next, stored.expires)
    }
    return next
  }

  failure(bucket: string): { count: number; since: number } | undefined {
    return this.failures.get(bucket)
  }

  lastFailure(): number | undefined {
    let at: number | undefined
    for (const f of this.failures.values()) at = at === undefined ? f.since : Math.max(at, f.since)
    return at
  }

  writeFailure(bucket: string, count: number, since: number, now: number): void {
    for (const [b, f] of this.failures) {
      if (f.since <= now - FAILURE_WINDOW_SECONDS) this.failures.delete(b)
    }
    this.failures.delete(bucket)
    this.failures.set(bucket, { count, since })
    // Map order is insertion order: the oldest rows go first.
    while (this.failures.size > MAX_FAILURE_ROWS) {
      const oldest = this.failures.keys().next().value
      if (oldest === undefined) break
      this.failures.delete(oldest)
    }
  }
}
