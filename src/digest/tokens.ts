/**
 * Nonce and opaque: minted by the gate, MAC'd with HMAC-SHA-256 under a secret key (current +
 * previous for rotation), verified with no I/O. Byte layout documented in docs/nonce-format.md.
 *
 * nonce  = base64url( version(1)=1 | keyId(1) | issuedAt(u32 BE, s) | serverIdLen(1) | serverId
 *                     | handle(16) | random(8) | mac(16) )                        47 + n bytes
 *          the top bit of random's first byte is the `fresh` flag (a new handle, no context yet)
 * opaque = base64url( version(1)=1 | keyId(1) | handle(16) | mac(16) )            34 bytes
 * mac    = first 16 bytes of HMAC-SHA-256(secret, label | 0x00 | every byte before the mac),
 *          label "digest-gate nonce v1" / "digest-gate opaque v1" (domain separation).
 * All times are Unix seconds.
 */
import { decodeBase64Url, encodeBase64Url } from './base64url.ts'

export interface TokenKey {
  /** 0-255, written into every token so verification picks the right key. */
  id: number
  /** Use at least 32 random bytes' worth (e.g. 43+ base64 chars); its UTF-8 bytes are the key. */
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

/**
 * `valid`: minted by this gate under a key it holds; `expired` is judged separately (stale).
 * `fresh`: minted for a bare challenge, with a new handle that names no context yet (MAC-covered).
 */
export type NonceCheck =
  | ({ kind: 'valid'; expired: boolean; ageSeconds: number; fresh: boolean } & NonceFields)
  | { kind: 'invalid'; reason: 'malformed' | 'bad_mac' | 'unknown_key' | 'wrong_server' | 'future' }

export type OpaqueCheck =
  | { kind: 'valid'; handle: ContextHandle; keyId: number }
  | { kind: 'invalid'; reason: 'malformed' | 'bad_mac' | 'unknown_key' }

export const TOKEN_VERSION = 1
export const HANDLE_BYTES = 16
export const NONCE_RANDOM_BYTES = 8
/** In the first byte of `random`: set in a nonce minted with a fresh handle. */
export const NONCE_FRESH_BIT = 0x80
export const MAC_BYTES = 16
export const MAX_SERVER_ID_BYTES = 64
/** A nonce issued further ahead than this (clock skew between isolates) is refused. */
export const MAX_FUTURE_SKEW_SECONDS = 60

const NONCE_HEAD_BYTES = 7 // version, keyId, issuedAt(4), serverIdLen
const NONCE_MIN_BYTES = NONCE_HEAD_BYTES + 1 + HANDLE_BYTES + NONCE_RANDOM_BYTES + MAC_BYTES
const NONCE_MAX_BYTES = NONCE_MIN_BYTES - 1 + MAX_SERVER_ID_BYTES
const OPAQUE_BYTES = 2 + HANDLE_BYTES + MAC_BYTES

const encoder = new TextEncoder()
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const NONCE_LABEL = encoder.encode('digest-gate nonce v1\0')
const OPAQUE_LABEL = encoder.encode('digest-gate opaque v1\0')

export function newContextHandle(): ContextHandle {
  return encodeBase64Url(crypto.getRandomValues(new Uint8Array(HANDLE_BYTES)))
}

/** True for a well-formed context handle (22 base64url chars encoding 16 bytes). */
export function isContextHandle(text: string): boolean {
  return text.length === 22 && decodeBase64Url(text)?.length === HANDLE_BYTES
}

/** Imports HMAC keys once; the returned object is safe to cache per isolate. */
export interface TokenMinter {
  /**
   * `now` in Unix seconds; `fresh` when the handle is new (a bare challenge), so that an answer on
   * it is known to name no context yet. Throws RangeError on a bad serverId/now, TypeError on a
   * bad handle.
   */
  mintNonce(fields: {
    serverId: string
    handle: ContextHandle
    now: number
    fresh?: boolean
  }): Promise<string>
  /** Throws TypeError on a malformed handle. */
  mintOpaque(handle: ContextHandle): Promise<string>
  /** `now` in Unix seconds. Never throws: every bad input is a reason. */
  verifyNonce(
    nonce: string,
    expect: { serverId: string; now: number; lifetimeSeconds: number }
  ): Promise<NonceCheck>
  verifyOpaque(opaque: string): Promise<OpaqueCheck>
}

/** Throws RangeError on an invalid key id or an empty secret. */
export async function createTokenMinter(keys: TokenKeys): Promise<TokenMinter> {
  const all = keys.previous === undefined ? [keys.current] : [keys.current, keys.previous]
  for (const key of all) {
    if (!Number.isInteger(key.id) || key.id < 0 || key.id > 255) {
      throw new RangeError('token key id must be an integer 0-255')
    }
    if (key.secret.length === 0) throw new RangeError('token key secret must not be empty')
  }
  // Ids derived from secrets may collide (1 rotation in 256): a token whose id names two keys is
  // checked against both, so a collision costs one extra MAC, never a refused token.
  const byId = new Map<number, CryptoKey[]>()
  const imported = await Promise.all(all.map((key) => importHmacKey(key.secret)))
  all.forEach((key, i) => {
    byId.set(key.id, [...(byId.get(key.id) ?? []), imported[i] as CryptoKey])
  })
  const currentId = keys.current.id
  const currentKey = imported[0] as CryptoKey
  // Tokens whose MAC verified, by their text: a session sends the same nonce and opaque with
  // every request, and a MAC (an HMAC over Web Crypto, a promise each) is the costliest check.
  // Only the MAC is remembered: age, server and expiry are checked again every time.
  const verifiedNonces = new Map<string, ParsedNonce>()
  const verifiedOpaques = new Map<string, Extract<OpaqueCheck, { kind: 'valid' }>>()

  return {
    async mintNonce({ serverId, handle, now, fresh = false }) {
      const server = encodeServerId(serverId)
      const issuedAt = unixSeconds(now)
      const bytes = new Uint8Array(NONCE_MIN_BYTES - 1 + server.length)
      const view = new DataView(bytes.buffer)
      bytes[0] = TOKEN_VERSION
      bytes[1] = currentId
      view.setUint32(2, issuedAt)
      bytes[6] = server.length
      bytes.set(server, NONCE_HEAD_BYTES)
      let at = NONCE_HEAD_BYTES + server.length
      bytes.set(decodeHandle(handle), at)
      at += HANDLE_BYTES
      crypto.getRandomValues(bytes.subarray(at, at + NONCE_RANDOM_BYTES))
      bytes[at] = ((bytes[at] as number) & ~NONCE_FRESH_BIT) | (fresh ? NONCE_FRESH_BIT : 0)
      at += NONCE_RANDOM_BYTES
      bytes.set(await mac(currentKey, NONCE_LABEL, bytes.subarray(0, at)), at)
      return encodeBase64Url(bytes)
    },

    async mintOpaque(handle) {
      const bytes = new Uint8Array(OPAQUE_BYTES)
      bytes[0] = TOKEN_VERSION
      bytes[1] = currentId
      bytes.set(decodeHandle(handle), 2)
      const at = 2 + HANDLE_BYTES
      bytes.set(await mac(currentKey, OPAQUE_LABEL, bytes.subarray(0, at)), at)
      return encodeBase64Url(bytes)
    },

    async verifyNonce(nonce, expect) {
      let fields = verifiedNonces.get(nonce)
      if (fields === undefined) {
        const parsed = parseNonce(nonce)
        if (parsed === undefined) return { kind: 'invalid', reason: 'malformed' }
        const candidates = byId.get(parsed.fields.keyId)
        if (candidates === undefined) return { kind: 'invalid', reason: 'unknown_key' }
        if (!(await macMatchesAny(candidates, NONCE_LABEL, parsed.bytes)))
          return { kind: 'invalid', reason: 'bad_mac' }
        fields = { ...parsed.fields, fresh: parsed.fresh }
        remember(verifiedNonces, nonce, fields)
      }
      if (fields.serverId !== expect.serverId) return { kind: 'invalid', reason: 'wrong_server' }
      const now = Math.floor(expect.now)
      if (fields.issuedAt > now + MAX_FUTURE_SKEW_SECONDS)
        return { kind: 'invalid', reason: 'future' }
      const ageSeconds = Math.max(0, now - fields.issuedAt)
      return { kind: 'valid', expired: ageSeconds > expect.lifetimeSeconds, ageSeconds, ...fields }
    },

    async verifyOpaque(opaque) {
      const known = verifiedOpaques.get(opaque)
      if (known !== undefined) return known
      const bytes = opaque.length === 46 ? decodeBase64Url(opaque) : undefined
      if (bytes === undefined || bytes.length !== OPAQUE_BYTES || bytes[0] !== TOKEN_VERSION) {
        return { kind: 'invalid', reason: 'malformed' }
      }
      const keyId = bytes[1] as number
      const candidates = byId.get(keyId)
      if (candidates === undefined) return { kind: 'invalid', reason: 'unknown_key' }
      if (!(await macMatchesAny(candidates, OPAQUE_LABEL, bytes))) {
        return { kind: 'invalid', reason: 'bad_mac' }
      }
      const valid = {
        kind: 'valid' as const,
        handle: encodeBase64Url(bytes.subarray(2, 2 + HANDLE_BYTES)),
        keyId,
      }
      remember(verifiedOpaques, opaque, valid)
      return valid
    },
  }
}

/**
 * Read the fields of a nonce WITHOUT checking its MAC: for the authority, which does not hold the
 * gate's key but must check that the nonce names the calling gate. Undefined if malformed.
 */
export function readNonceFields(nonce: string): NonceFields | undefined {
  return parseNonce(nonce)?.fields
}

type ParsedNonce = NonceFields & { fresh: boolean }

function parseNonce(
  nonce: string
): { fields: NonceFields; fresh: boolean; bytes: Uint8Array } | undefined {
  // Bound the work before decoding anything: base64url length of the largest nonce.
  if (nonce.length > Math.ceil((NONCE_MAX_BYTES * 4) / 3)) return undefined
  const bytes = decodeBase64Url(nonce)
  if (bytes === undefined || bytes.length < NONCE_MIN_BYTES || bytes[0] !== TOKEN_VERSION) {
    return undefined
  }
  const serverIdLength = bytes[6] as number
  if (serverIdLength < 1 || bytes.length !== NONCE_MIN_BYTES - 1 + serverIdLength) return undefined
  let serverId: string
  try {
    serverId = strictUtf8.decode(
      bytes.subarray(NONCE_HEAD_BYTES, NONCE_HEAD_BYTES + serverIdLength)
    )
  } catch {
    return undefined
  }
  const handleAt = NONCE_HEAD_BYTES + serverIdLength
  const fields: NonceFields = {
    serverId,
    issuedAt: new DataView(bytes.buffer, bytes.byteOffset).getUint32(2),
    handle: encodeBase64Url(bytes.subarray(handleAt, handleAt + HANDLE_BYTES)),
    keyId: bytes[1] as number,
  }
  const fresh = ((bytes[handleAt + HANDLE_BYTES] as number) & NONCE_FRESH_BIT) !== 0
  return { fields, fresh, bytes }
}

function encodeServerId(serverId: string): Uint8Array {
  const bytes = encoder.encode(serverId)
  // A lone surrogate would be replaced by U+FFFD and never match on verification.
  if (bytes.length < 1 || bytes.length > MAX_SERVER_ID_BYTES) {
    throw new RangeError(`serverId must be 1-${MAX_SERVER_ID_BYTES} bytes of UTF-8`)
  }
  if (strictUtf8.decode(bytes) !== serverId) throw new RangeError('serverId is not valid Unicode')
  return bytes
}

function unixSeconds(now: number): number {
  const seconds = Math.floor(now)
  // Catches Date.now() (milliseconds) passed by mistake, as well as NaN and negatives.
  if (!(seconds >= 0 && seconds <= 0xffffffff)) {
    throw new RangeError('now must be Unix seconds (0 .. 2^32-1)')
  }
  return seconds
}

function decodeHandle(handle: ContextHandle): Uint8Array {
  const bytes = decodeBase64Url(handle)
  if (bytes === undefined || bytes.length !== HANDLE_BYTES) {
    throw new TypeError('context handle must be 16 bytes in base64url')
  }
  return bytes
}

function importHmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    'raw',
    encoder.encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign']
  )
}

async function mac(key: CryptoKey, label: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
  const input = new Uint8Array(label.length + message.length)
  input.set(label)
  input.set(message, label.length)
  const full = new Uint8Array(await crypto.subtle.sign('HMAC', key, input))
  return full.subarray(0, MAC_BYTES)
}

/** True when any of the keys produced the token's MAC. */
async function macMatchesAny(
  keys: CryptoKey[],
  label: Uint8Array,
  token: Uint8Array
): Promise<boolean> {
  for (const key of keys) if (await macMatches(key, label, token)) return true
  return false
}

/** Recomputes the MAC over everything before the last MAC_BYTES and compares in constant time. */
async function macMatches(key: CryptoKey, label: Uint8Array, token: Uint8Array): Promise<boolean> {
  const at = token.length - MAC_BYTES
  const expected = await mac(key, label, token.subarray(0, at))
  let diff = 0
  for (let i = 0; i < MAC_BYTES; i++) diff |= (expected[i] as number) ^ (token[at + i] as number)
  return diff === 0
}

/** Verified tokens remembered per minter, the oldest forgotten first. */
const MAX_REMEMBERED_TOKENS = 4096

function remember<V>(memo: Map<string, V>, token: string, value: V): void {
  if (memo.size >= MAX_REMEMBERED_TOKENS) {
    const oldest = memo.keys().next().value
    if (oldest !== undefined) memo.delete(oldest)
  }
  memo.set(token, value)
}
