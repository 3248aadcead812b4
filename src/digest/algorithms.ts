/**
 * Digest computations of RFC 7616 §3.4: H(A1), -sess keys, request-digest, rspauth, userhash.
 * The "session key" cached by the gate is always the base H(username:realm:password) for the
 * algorithm's hash function; `-sess` keys are derived from it per request (see DESIGN.md).
 */
import type { AlgorithmName, HashName, Qop } from './types.ts'

export const ALGORITHMS: readonly AlgorithmName[]

/** Case-insensitive match of an `algorithm` token; undefined for an unknown one. */
export declare function parseAlgorithmName(token: string): AlgorithmName | undefined
export declare function hashOf(algorithm: AlgorithmName): HashName
export declare function isSess(algorithm: AlgorithmName): boolean

/** H(username ":" realm ":" password) — the per-realm stored hash and the session key. */
export declare function baseHA1(
  hash: HashName,
  username: string,
  realm: string,
  password: string
): Promise<string>

/** userhash = H(username ":" realm) (RFC 7616 §3.4.4). */
export declare function userhash(hash: HashName, username: string, realm: string): Promise<string>

export interface ResponseInput {
  algorithm: AlgorithmName
  /** The base H(username:realm:password) for the algorithm's hash. */
  ha1: string
  nonce: string
  /** nc exactly as sent (8 hex digits); required with qop. */
  nc?: string
  cnonce?: string
  /** Absent: RFC 2069 form `H(HA1:nonce:HA2)`. */
  qop?: Qop
  method: string
  uri: string
  /** Hex H(entity-body), for auth-int. */
  bodyHash?: string
}

/** The `response` (request-digest) a client must send. */
export declare function computeResponse(input: ResponseInput): Promise<string>

/** `rspauth` for Authentication-Info: as the response but with an empty method in A2. */
export declare function computeRspauth(input: Omit<ResponseInput, 'method'>): Promise<string>

/** Constant-time comparison of two strings (hex digests, tokens); false on length mismatch. */
export declare function timingSafeEqualString(a: string, b: string): boolean
