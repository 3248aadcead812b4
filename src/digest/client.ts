/**
 * The client side (InitializeSecurityContext / MakeSignature analog): a `fetch` wrapper that
 * answers Digest challenges, keeps nonce/nc/cnonce per protection space, preempts with a known
 * challenge, follows `stale=true` and `nextnonce`, and verifies `rspauth`.
 */
import type { AlgorithmName } from './types.ts'

export interface DigestClientOptions {
  username: string
  password: string
  /** Force one algorithm; default: the strongest offered that this client supports. */
  algorithm?: AlgorithmName
  /** Send `username` as the userhash when the server offers userhash=true. Default true. */
  userhash?: boolean
  /** Use `auth-int` when offered. Default false (auth preferred). */
  preferAuthInt?: boolean
  /** Throw when Authentication-Info carries a wrong rspauth. Default true. */
  verifyRspauth?: boolean
  /** Underlying fetch. Default globalThis.fetch. */
  fetch?: typeof fetch
}

export interface DigestClient {
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>
  /**
   * Pre-compute the Authorization header for the next request to `url` from the cached challenge
   * (advances nc). Undefined when no challenge is known for that protection space yet.
   * Benchmarks use it to take client hashing out of the timed phase.
   */
  authorizationFor(method: string, url: string | URL): Promise<string | undefined>
}

export declare function createDigestClient(options: DigestClientOptions): DigestClient
