/**
 * Header grammar (RFC 7235 §2.1 auth-param lists, RFC 7616 §3.3-3.5, RFC 8187 for `username*`).
 * Pure: no I/O, throws only DigestError.
 */
import type { AuthenticationInfo, DigestChallenge, DigestCredentials } from './types.ts'

/** Hard limits: a header longer or with more directives than this is refused. */
export const MAX_HEADER_LENGTH = 8192
export const MAX_DIRECTIVES = 32

/** Parse `Authorization: Digest …`. Throws DigestError on anything malformed. */
export declare function parseAuthorization(header: string): DigestCredentials

/** Format an `Authorization: Digest …` value (the client side). */
export declare function formatAuthorization(
  credentials: DigestCredentials & { charset?: 'UTF-8' }
): string

/**
 * Parse every Digest challenge in one or several `WWW-Authenticate` values (other schemes,
 * e.g. Basic, are skipped). Unknown directives are ignored; malformed ones throw DigestError.
 */
export declare function parseChallenges(headers: string | string[]): DigestChallenge[]

/** Format one challenge: `Digest realm="…", qop="auth", algorithm=SHA-256, nonce="…", …`. */
export declare function formatChallenge(challenge: DigestChallenge): string

export declare function parseAuthenticationInfo(header: string): AuthenticationInfo
export declare function formatAuthenticationInfo(info: AuthenticationInfo): string
