/**
 * The context handles this isolate has seen established or verified. An answer on a fresh nonce
 * (minted with a new handle) whose handle is here comes from a client that logged in: it takes the
 * hot path (the context first, no brake call). Any other answer on a fresh nonce may be a
 * stranger's and is braked before anything is touched (authenticate.ts). Bounded: the least
 * recently seen handle is forgotten first, and a forgotten one costs its client one admission,
 * given back once it verifies.
 */

/** At the limit about 0.75 MB per isolate (measured under Node: 10,000 handles in a Set). */
export const MAX_KNOWN_HANDLES = 10_000

export class KnownHandles {
  private readonly handles = new Set<string>()
  private readonly limit: number

  constructor(limit = MAX_KNOWN_HANDLES) {
    if (!(Number.isInteger(limit) && limit >= 1)) throw new RangeError('limit must be >= 1')
    this.limit = limit
  }

  has(handle: string): boolean {
    return this.handles.has(handle)
  }

  /** Seen again: kept as the most recent (a Set keeps insertion order). */
  add(handle: string): void {
    this.handles.delete(handle)
    this.handles.add(handle)
    if (this.handles.size > this.limit) {
      const oldest = this.handles.values().next().value
      if (oldest !== undefined) this.handles.delete(oldest)
    }
  }

  get size(): number {
    return this.handles.size
  }
}
