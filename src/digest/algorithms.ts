/**
 * Digest computations of RFC 7616 §3.4: H(A1), -sess keys, request-digest, rspauth, userhash.
 * The "session key" cached by the gate is always the base H(username:realm:password) for the
 * algorithm's hash function; `-sess` keys are derived from it per request.
 * Synchronous (see hash.ts): a Durable Object can verify and record in one atomic step.
 */
import { DigestError } from './errors.ts'
import { hashHex } from './hash.ts'
import type { AlgorithmName, HashName, Qop } from './types.ts'

/** Every algorithm of the RFC 7616 §6.1 registry, in canonical spelling. */
export const ALGORITHMS: readonly AlgorithmName[] = [
  'MD5',
  'MD5-sess',
  'SHA-256',
  'SHA-256-sess',
  'SHA-512-256',
  'SHA-512-256-sess',
]

const BY_LOWER_NAME: ReadonlyMap<string, AlgorithmName> = new Map(
  ALGORITHMS.map((name) => [name.toLowerCase(), name])
)

/** Case-insensitive match of an `algorithm` token; undefined for an unknown one. */
export function parseAlgorithmName(token: string): AlgorithmName | undefined {
  return BY_LOWER_NAME.get(token.toLowerCase())
}

/** Hex digits of each hash's digest: an H(A1) (a session key) of another length is none of it. */
export const HEX_DIGEST_LENGTH: Readonly<Record<HashName, number>> = {
  MD5: 32,
  'SHA-256': 64,
  'SHA-512-256': 64,
}

export function hashOf(algorithm: AlgorithmName): HashName {
  return isSess(algorithm) ? (algorithm.slice(0, -5) as HashName) : (algorithm as HashName)
}

export function isSess(algorithm: AlgorithmName): boolean {
  return algorithm.endsWith('-sess')
}

/** H(username ":" realm ":" password) — the per-realm stored hash and the session key. */
export function baseHA1(hash: HashName, username: string, realm: string, password: string): string {
  return hashHex(hash, `${username}:${realm}:${password}`)
}

/** userhash = H(username ":" realm) (RFC 7616 §3.4.4). */
export function userhash(hash: HashName, username: string, realm: string): string {
  return hashHex(hash, `${username}:${realm}`)
}

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

/**
 * The `response` (request-digest) a client must send.
 * Throws DigestError('missing_directive') when qop is set without nc/cnonce or a -sess algorithm
 * has no cnonce (a parser should have refused those already); TypeError for auth-int without
 * `bodyHash` (a caller bug).
 */
export function computeResponse(input: ResponseInput): string {
  const hash = hashOf(input.algorithm)
  const prefix = responsePrefix(sessionHA1(input), input)
  return hashHex(hash, prefix + ha2For(hash, input.method, input))
}

/** `rspauth` for Authentication-Info: as the response but with an empty method in A2. */
export function computeRspauth(input: Omit<ResponseInput, 'method'>): string {
  return computeResponse({ ...input, method: '' })
}

/** A request's response and, on demand, the rspauth that answers it. */
export interface ResponseDigests {
  /** What `computeResponse` gives. */
  response: string
  /** What `computeRspauth` gives. */
  rspauth(): string
}

/**
 * The response and the rspauth of one request, as a server verifies it and then answers: a -sess
 * key and the text before H(A2) are made once for both. (Sharing the hash state of that text as
 * well was measured: no faster, as @noble/hashes in workerd and slower with node:crypto.) Throws as
 * `computeResponse` does.
 */
export function computeResponseDigests(input: ResponseInput): ResponseDigests {
  const hash = hashOf(input.algorithm)
  const prefix = responsePrefix(sessionHA1(input), input)
  return {
    response: hashHex(hash, prefix + ha2For(hash, input.method, input)),
    rspauth: () => hashHex(hash, prefix + ha2For(hash, '', input)),
  }
}

/**
 * What the request-digest hashes before H(A2): `HA1:nonce:nc:cnonce:qop:`, or `HA1:nonce:` in the
 * RFC 2069 form (no qop).
 */
function responsePrefix(ha1: string, input: ResponseInput): string {
  if (input.qop === undefined) return `${ha1}:${input.nonce}:`
  const { nc, cnonce } = input
  if (nc === undefined) throw new DigestError('missing_directive', 'qop without nc', 'nc')
  if (cnonce === undefined) {
    throw new DigestError('missing_directive', 'qop without cnonce', 'cnonce')
  }
  return `${ha1}:${input.nonce}:${nc}:${cnonce}:${input.qop}:`
}

/** HA1 as it enters the response: the base key, or H(HA1:nonce:cnonce) for -sess. */
function sessionHA1(input: ResponseInput): string {
  if (!isSess(input.algorithm)) return input.ha1
  if (input.cnonce === undefined) {
    throw new DigestError('missing_directive', `${input.algorithm} without cnonce`, 'cnonce')
  }
  return hashHex(hashOf(input.algorithm), `${input.ha1}:${input.nonce}:${input.cnonce}`)
}

/**
 * H(A2) without a body: method and URI only, the same for a session's requests (and their
 * rspauth) to one resource, so the recent ones are kept. Nothing secret goes in, and the memo is
 * dropped whole when full.
 */
const recentHA2 = new Map<string, string>()
const RECENT_HA2_MAX = 256

/** H(A2) for `method` (empty for rspauth); with auth-int the body hash goes in, never memoised. */
function ha2For(hash: HashName, method: string, input: ResponseInput): string {
  if (input.qop === 'auth-int') {
    if (input.bodyHash === undefined) throw new TypeError('auth-int needs bodyHash')
    return hashHex(hash, `${method}:${input.uri}:${input.bodyHash}`)
  }
  const key = `${hash}\n${method}:${input.uri}`
  let ha2 = recentHA2.get(key)
  if (ha2 === undefined) {
    ha2 = hashHex(hash, `${method}:${input.uri}`)
    if (recentHA2.size >= RECENT_HA2_MAX) recentHA2.clear()
    recentHA2.set(key, ha2)
  }
  return ha2
}

/**
 * Constant-time comparison of two strings (hex digests, tokens); false on length mismatch.
 * The time depends on the lengths only, never on where the contents differ.
 */
export function timingSafeEqualString(a: string, b: string): boolean {
  const length = Math.max(a.length, b.length)
  let diff = a.length ^ b.length
  for (let i = 0; i < length; i++) {
    // charCodeAt past the end is NaN, which `| 0` turns into 0.
    diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0)
  }
  return diff === 0
}
