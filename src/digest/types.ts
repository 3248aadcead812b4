/** Shared vocabulary of the protocol core (RFC 7616). */

export type HashName = 'MD5' | 'SHA-256' | 'SHA-512-256'

/** Canonical spellings, as RFC 7616 §6.1 registers them. */
export type AlgorithmName =
  | 'MD5'
  | 'MD5-sess'
  | 'SHA-256'
  | 'SHA-256-sess'
  | 'SHA-512-256'
  | 'SHA-512-256-sess'

export type Qop = 'auth' | 'auth-int'

/** One `WWW-Authenticate: Digest` challenge. */
export interface DigestChallenge {
  realm: string
  nonce: string
  opaque?: string
  /** As offered; omitted means MD5 (RFC 2617). */
  algorithm?: AlgorithmName
  /** Offered qop values; empty/undefined means the RFC 2069 form. */
  qop?: Qop[]
  stale?: boolean
  domain?: string[]
  charset?: 'UTF-8'
  userhash?: boolean
}

/** A parsed `Authorization: Digest` header. Values are unescaped. */
export interface DigestCredentials {
  /**
   * The user name as the client identified itself: the plain name, the decoded `username*`,
   * or — when `userhash` is true — the hex userhash.
   */
  username: string
  userhash: boolean
  realm: string
  nonce: string
  uri: string
  response: string
  /** Parsed algorithm; undefined when the client sent none (means MD5). */
  algorithm?: AlgorithmName
  /** The algorithm token exactly as sent, for logs (an unknown one makes the parser throw). */
  algorithmRaw?: string
  cnonce?: string
  opaque?: string
  qop?: Qop
  /** nc as a number (sent as 8 hex digits; also accepted quoted). */
  nc?: number
  /** nc exactly as sent (needed to recompute the response: it enters the hash verbatim). */
  ncRaw?: string
}

/** `Authentication-Info` (RFC 7615 / RFC 7616 §3.5). */
export interface AuthenticationInfo {
  nextnonce?: string
  qop?: Qop
  rspauth?: string
  cnonce?: string
  nc?: string
}
