/**
 * What the gate asks of a security context (the Durable Object behind an opaque) and what it
 * answers. Plain data: it crosses the RPC boundary.
 */
import type { Principal } from '../authority-protocol/v1.ts'
import type { ReplayMode } from '../digest/nc-window.ts'
import type { AlgorithmName, Qop } from '../digest/types.ts'
import type { CachedContext } from './context-check.ts'

export interface ContextPolicy {
  replay: ReplayMode
  windowSize: number
  /** Seconds a nonce lives; its nc state is kept that long plus a grace period. */
  nonceLifetime: number
  idleTimeout: number
  maxLifetime: number
  revalidateAfter: number
  /** Mismatched responses from one address before the context refuses that address. */
  maxFailures: number
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
  bodyHash?: string
  now: number
  /** The client's address: mismatches are counted per address. */
  clientIp: string
}

export type VerifyOutcome =
  /** Verified at the edge and nc recorded. */
  | {
      outcome: 'ok'
      principal: Principal
      rspauth: string
      /** Replay mode `off` only: the context, for the gate's isolate cache. */
      cached?: CachedContext
    }
  /** The cached key verified the response but the nonce expired: answer stale=true. */
  | { outcome: 'stale' }
  /** Response valid but nc repeated or out of the window: answer stale=true. */
  | { outcome: 'replay' }
  /** The response does not match the cached key. */
  | { outcome: 'mismatch' }
  /** Too many mismatches against this context. */
  | { outcome: 'locked' }
  /** Revoked by an administrator: a fresh challenge. */
  | { outcome: 'revoked' }
  /** The cached key cannot decide: ask the authority (no context, expired, due for revalidation,
   *  another user or hash function). */
  | { outcome: 'ask_authority'; reason: 'no_context' | 'expired' | 'revalidate' | 'other_user' }

export interface EstablishRequest extends ContextRequest {
  principal: Principal
  /** H(username:realm:password) for the algorithm's hash: password-equivalent. */
  sessionKey: string
}

export type EstablishOutcome =
  | { outcome: 'ok'; rspauth: string }
  | { outcome: 'stale' }
  | { outcome: 'replay' }
