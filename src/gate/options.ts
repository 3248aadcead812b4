/** Options of the digestAuth() middleware, with the defaults a user would expect. */
import type { Context } from 'hono'
import type { Principal } from '../authority-protocol/v1.ts'
import type { ReplayMode } from '../digest/nc-window.ts'
import type { TokenKeys } from '../digest/tokens.ts'
import type { AlgorithmName, Qop } from '../digest/types.ts'
import type { AuthorityClient } from './authority-client.ts'
import type { BrakePolicy, BrakeStore } from './brake-policy.ts'
import type { ContextStore } from './context-store.ts'
import type { Binding } from './context-types.ts'
import type { DecisionLog } from './decision-log.ts'

// The brakes' contract lives with their policy; re-exported for code that still imports it here.
export type { BrakeAttempt, BrakeStore } from './brake-policy.ts'

export type MessageOption =
  | string
  | object
  | ((c: Context) => string | object | Promise<string | object>)

export interface DigestAuthOptions {
  realm: string
  /** This gate's identity: written into every nonce; the authority checks it. */
  serverId: string
  /** HMAC keys for nonce and opaque: current, and previous during a rotation. */
  nonceKeys: TokenKeys
  authority: AuthorityClient
  contexts: ContextStore
  /** Challenges offered, one per algorithm, in this order. Default SHA-256 then MD5. */
  algorithms?: AlgorithmName[]
  /** qop values offered. Default ['auth']; [] = RFC 2069 form (no qop). */
  qop?: Qop[]
  /** Offer userhash=true. Default false. */
  userhash?: boolean
  /** Seconds a nonce is valid. Default 300. */
  nonceLifetime?: number
  /** Send `nextnonce` when a nonce has less than this many seconds left. Default 30. */
  nextnonceLead?: number
  replay?: ReplayMode
  /** nc window size for replay='window' (>= 64). Default 128. */
  windowSize?: number
  /** The `uri` directive must name the request target. Default true. */
  validateUri?: boolean
  /** Seconds a context may sit unused. Default 1800. */
  idleTimeout?: number
  /** Seconds a context lives at most. Default 43200 (12 h). */
  maxLifetime?: number
  /** Seconds after which the authority re-verifies a context. Default 600. */
  revalidateAfter?: number
  /**
   * Seconds past a due revalidation during which a session keeps working when the authority
   * cannot be reached (a denial still ends it at once). Default 3600.
   */
  revalidateGrace?: number
  /** Largest body hashed for qop=auth-int, in bytes; larger bodies get 413. Default 1 MiB. */
  maxAuthIntBody?: number
  /**
   * Bind each context to the channel it was established on: `address` (the client's brake
   * bucket), `client-cert` (the mTLS client certificate's fingerprint; no certificate, no login),
   * or `none`. A request from another channel is refused (401), never verified. Default `none`.
   */
  binding?: Binding
  /** Brakes against guessing; false disables them. Policy defaults: DEFAULT_BRAKE_POLICY. */
  brakes?: { store: BrakeStore; policy?: Partial<BrakePolicy> } | false
  /** Client address for the brakes (bucketed by clientBucket()). Default: CF-Connecting-IP. */
  clientIp?: (c: Context) => string
  onAuthSuccess?: (c: Context, principal: Principal) => void | Promise<void>
  /** Receives one record per decision. Default: a JSON line on console.log. */
  onDecision?: (entry: DecisionLog) => void
  /** Body of 401 responses. Default `{ error: 'unauthorized' }`. */
  unauthorizedMessage?: MessageOption
  /** Body of 400 responses (the parser's message is added). */
  invalidRequestMessage?: MessageOption
}

export const DEFAULTS = {
  algorithms: ['SHA-256', 'MD5'] as AlgorithmName[],
  qop: ['auth'] as Qop[],
  userhash: false,
  nonceLifetime: 300,
  nextnonceLead: 30,
  replay: 'window' as ReplayMode,
  windowSize: 128,
  validateUri: true,
  idleTimeout: 1800,
  maxLifetime: 43_200,
  revalidateAfter: 600,
  revalidateGrace: 3600,
  maxAuthIntBody: 1024 * 1024,
  binding: 'none' as Binding,
  /** Wrong answers from one bucket a context verifies before the brakes must admit the next. */
  freeMismatchesWithBrakes: 1,
  /** Without brakes: wrong answers from one bucket before the context refuses it for a while. */
  maxContextFailures: 5,
  retryAfterAuthorityFault: 10,
}
