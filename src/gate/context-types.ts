/**
 * What the gate asks of a security context (the Durable Object behind an opaque) and what it
 * answers. Plain data: it crosses the RPC boundary.
 */
import type { Principal } from '../authority-protocol/v1.ts'
import type { ReplayMode } from '../digest/nc-window.ts'
import type { AlgorithmName, Qop } from '../digest/types.ts'
import type { BatchCaller } from './verify-batches.ts'

/** What a context is bound to (BINDING): nothing, the client's bucket, or its TLS certificate. */
export type Binding = 'none' | 'address' | 'client-cert'

export interface ContextPolicy {
  replay: ReplayMode
  windowSize: number
  /** Seconds a nonce lives; its nc state is kept that long plus a grace period. */
  nonceLifetime: number
  idleTimeout: number
  maxLifetime: number
  revalidateAfter: number
  /**
   * Wrong responses from one client bucket a context verifies on its own. Past that, with brakes
   * on, each further attempt from the bucket must be admitted by the brakes first; without brakes
   * the bucket is refused (`locked`) until its failures age out. With brakes on, once any bucket
   * answered wrong, buckets the context has not verified its client from are admitted first too.
   */
  freeMismatches: number
  brakes: boolean
  /** Seconds without requests before a context's object leaves memory; false/unset: the runtime's. */
  releaseAfter?: number | false
}

/** The cached security context: who authenticated, and the session key that verifies them. */
export interface CachedContext {
  username: string
  userhash: boolean
  realm: string
  principal: Principal
  algorithm: AlgorithmName
  /** H(username:realm:password) for the algorithm's hash; '' once ended or revoked. */
  sessionKey: string
  created: number
  lastUsed: number
  verifiedAt: number
  expires: number
  idleTimeout: number
  revoked: boolean
  /** The session ended (expired or idle): kept, without its key, so the handle keeps its owner. */
  ended: boolean
  /** Channel facts seen at establish (BINDING); undefined when not bound. */
  binding?: string
}

/** The parts of a request a context needs to recompute its response. */
export interface ContextRequest {
  username: string
  userhash: boolean
  realm: string
  algorithm: AlgorithmName
  nonce: string
  /** Unix seconds the nonce was issued: its nc state expires with it. */
  nonceIssuedAt: number
  /** The nonce is past its lifetime: verify, but record nothing (the answer is stale=true). */
  nonceExpired: boolean
  uri: string
  method: string
  response: string
  qop?: Qop
  nc?: number
  ncRaw?: string
  cnonce?: string
  /** H(entity-body) for auth-int; absent until the context asked for it (`need_body`). */
  bodyHash?: string
  now: number
  /** The client's brake bucket (address, /64, Worker tenant): mismatches are counted per bucket. */
  bucket: string
  /** Channel facts of this request (BINDING); undefined when binding is off or none were seen. */
  binding?: string
  /** The brakes admitted this attempt (a bucket past its free mismatches). */
  admitted?: boolean
}

export type VerifyAnswer =
  /** Verified at the edge and nc recorded. */
  | {
      kind: 'verified'
      principal: Principal
      rspauth: string
      /** Replay mode `off` only: the context, for the gate's isolate cache. */
      cached?: CachedContext
    }
  /** Verified and nc recorded, but the authority is due to re-verify the user. */
  | { kind: 'revalidate'; principal: Principal; rspauth: string; verifiedAt: number }
  /** The cached key verified the response but the nonce expired: answer stale=true. */
  | { kind: 'stale' }
  /** nc repeated or out of the window. `verified`: the response was valid (stale=true). */
  | { kind: 'replay'; verified: boolean }
  /** The response does not match the cached key (counted against the bucket). */
  | { kind: 'mismatch' }
  /** Brakes on: this bucket is past its free mismatches; ask the brakes, then again. */
  | { kind: 'admission_required' }
  /** Brakes off: this bucket is past its free mismatches; refused until they age out. */
  | { kind: 'locked' }
  /** Revoked by an administrator: a fresh challenge. */
  | { kind: 'revoked' }
  /** The channel facts differ from those the context was established on. */
  | { kind: 'bad_bindings' }
  /** auth-int: the context exists and may verify; hash the body and ask again. */
  | { kind: 'need_body' }
  /** The cached key cannot decide: ask the authority (no context, ended, another user). */
  | { kind: 'ask_authority'; reason: 'no_context' | 'expired' | 'other_user' }

/** The client as its first request showed it: for the operator's console, never verified. */
export interface ClientFacts {
  /** The client's address, as the brakes read it (CF-Connecting-IP). */
  address: string
  userAgent?: string
}

export interface EstablishRequest extends ContextRequest {
  principal: Principal
  /** H(username:realm:password) for the algorithm's hash: password-equivalent. */
  sessionKey: string
  /** When the gate asked the authority (Unix ms): a revocation after this moment wins. */
  startedAt: number
  /** Passed on to the console's index when a session begins; never sent with verify. */
  client?: ClientFacts
}

export type EstablishAnswer =
  /** The key is cached and nc recorded. */
  | { kind: 'established'; rspauth: string }
  | { kind: 'stale' }
  | { kind: 'replay' }
  /** The handle belongs to another principal: that user starts a context of their own. */
  | { kind: 'taken' }
  | { kind: 'revoked' }

/**
 * Where security contexts live: Durable Objects (durableObjectContexts, shared across the edge)
 * or this process's memory (memoryContexts). Every method decides atomically for its handle.
 */
export interface ContextStore {
  /**
   * `caller`: the request it is for, when the store may answer it within another request's call
   * (durableObjectContexts batches a handle's concurrent verifies).
   */
  verify(
    handle: string,
    req: ContextRequest,
    policy: ContextPolicy,
    caller?: BatchCaller
  ): Promise<VerifyAnswer>
  /**
   * Cache the principal and session key the authority returned, and record nc. Refused with
   * `revoked` when the user or the handle was revoked after `req.startedAt`.
   */
  establish(handle: string, req: EstablishRequest, policy: ContextPolicy): Promise<EstablishAnswer>
  /**
   * The authority vouched for the user again (revalidation). False: the context was revoked while
   * the authority was asked, and the request being verified must be refused.
   */
  revalidated(handle: string, principal: Principal, now: number): Promise<boolean>
  revoke(handle: string, now: number, policy: ContextPolicy): Promise<boolean>
  /** Revoke every context of a user; returns how many live ones were revoked. */
  revokeUser(realm: string, user: string, now: number, policy: ContextPolicy): Promise<number>
}
