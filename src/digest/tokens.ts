/**
 * Nonce and opaque: minted by the gate, MAC'd with HMAC-SHA-256 under a secret key (current +
 * previous for rotation), verified with no I/O. Byte layout documented in docs/nonce-format.md.
 *
 * nonce  = base64url( version | keyId | issuedAt(u32 s) | serverIdLen | serverId | handle(16) | random(8) | mac(16) )
 * opaque = base64url( version | keyId | handle(16) | mac(16) )
 * The MACs are domain-separated ("digest-gate nonce v1" / "digest-gate opaque v1").
 */

export interface TokenKey {
  /** 0-255, written into every token so verification picks the right key. */
  id: number
  secret: string
}

export interface TokenKeys {
  current: TokenKey
  previous?: TokenKey
}

/** A context handle: 16 random bytes, base64url (22 chars). Names the security-context DO. */
export type ContextHandle = string

export interface NonceFields {
  serverId: string
  /** Unix seconds. */
  issuedAt: number
  handle: ContextHandle
  keyId: number
}

export type NonceCheck =
  | ({ ok: true; expired: boolean; ageSeconds: number } & NonceFields)
  | { ok: false; reason: 'malformed' | 'bad_mac' | 'unknown_key' | 'wrong_server' | 'future' }

export type OpaqueCheck =
  | { ok: true; handle: ContextHandle; keyId: number }
  | { ok: false; reason: 'malformed' | 'bad_mac' | 'unknown_key' }

export declare function newContextHandle(): ContextHandle

/** Imports HMAC keys once; the returned object is safe to cache per isolate. */
export interface TokenMinter {
  mintNonce(fields: { serverId: string; handle: ContextHandle; now: number }): Promise<string>
  mintOpaque(handle: ContextHandle): Promise<string>
  verifyNonce(
    nonce: string,
    expect: { serverId: string; now: number; lifetimeSeconds: number }
  ): Promise<NonceCheck>
  verifyOpaque(opaque: string): Promise<OpaqueCheck>
}

export declare function createTokenMinter(keys: TokenKeys): Promise<TokenMinter>

/**
 * Read the fields of a nonce WITHOUT checking its MAC: for the authority, which does not hold the
 * gate's key but must check that the nonce names the calling gate. Undefined if malformed.
 */
export declare function readNonceFields(nonce: string): NonceFields | undefined
