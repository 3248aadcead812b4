/**
 * Gate tokens: how a gate proves its server identity to the authority, and which realms it may
 * have verified until when.
 *
 *   token   = "v2." base64url(payload) "." base64url(HMAC-SHA-256(secret, label | payload))
 *   label   = "digest-gate token v2:"
 *   payload = expiresAt(u32 BE, Unix seconds) | len(1) serverId | count(1) | (len(1) realm)*
 *
 * The authority holds the secret and mints one token per gate (`npm run users -- token <id>`).
 * Every field is under the MAC; the encoding is canonical (one byte string per claim set, one
 * text per byte string), so a token cannot be altered to claim anything else. Pure Web Crypto.
 */
import { decodeBase64Url, encodeBase64Url } from '../digest/base64url.ts'
import { MAX_SERVER_ID_BYTES } from '../digest/tokens.ts'
import { OUTDATED_TOKEN_PREFIXES, TOKEN_MAC_LABEL, TOKEN_PREFIX } from './v1.ts'

/** What a gate token grants. */
export interface GateTokenClaims {
  serverId: string
  /** The realms whose verifications the gate may ask for: 1 to MAX_TOKEN_REALMS, no repeats. */
  realms: readonly string[]
  /** Unix seconds: the token is refused from this second on. */
  expiresAt: number
}

export type GateTokenCheck =
  | { kind: 'valid'; claims: GateTokenClaims }
  /** Authentic but past its expiry: the claims say which gate needs a new token. */
  | { kind: 'invalid'; reason: 'expired'; claims: GateTokenClaims }
  /** malformed: not a token of the current format; forged: the MAC does not verify. */
  | { kind: 'invalid'; reason: 'malformed' | 'forged' | 'outdated_format' }

export const MAX_TOKEN_REALMS = 8
/** A realm is length-prefixed by one byte. */
export const MAX_TOKEN_REALM_BYTES = 255
/** The payload stores expiresAt as an unsigned 32-bit number (2106-02-07). */
export const MAX_EXPIRES_AT = 0xffff_ffff

const MAC_BYTES = 32
const MAX_PAYLOAD_BYTES =
  4 + 1 + MAX_SERVER_ID_BYTES + 1 + MAX_TOKEN_REALMS * (1 + MAX_TOKEN_REALM_BYTES)
/** Longest well-formed token: 2,871 characters, under the 5 KiB a Workers secret holds. */
export const MAX_TOKEN_LENGTH =
  TOKEN_PREFIX.length + 2 + Math.ceil((MAX_PAYLOAD_BYTES * 4) / 3) + Math.ceil((MAC_BYTES * 4) / 3)

const encoder = new TextEncoder()
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
const label = encoder.encode(TOKEN_MAC_LABEL)

/** Imported keys per secret: importKey is the costly part, and an isolate sees one or two secrets. */
const keyCache = new Map<string, Promise<CryptoKey>>()
const KEY_CACHE_LIMIT = 4

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret)
  if (key === undefined) {
    if (keyCache.size >= KEY_CACHE_LIMIT) keyCache.clear()
    key = crypto.subtle.importKey(
      'raw',
      encoder.encode(secret),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign', 'verify']
    )
    keyCache.set(secret, key)
  }
  return key
}

function macInput(payload: Uint8Array): Uint8Array<ArrayBuffer> {
  const input = new Uint8Array(label.length + payload.length)
  input.set(label)
  input.set(payload, label.length)
  return input
}

/** UTF-8 of `text` when it is `min`-`max` bytes and round-trips (no lone surrogates). */
function utf8Within(text: string, min: number, max: number): Uint8Array | undefined {
  const bytes = encoder.encode(text)
  if (bytes.length < min || bytes.length > max) return undefined
  // A lone surrogate encodes as U+FFFD and would never round-trip.
  if (strictUtf8.decode(bytes) !== text) return undefined
  return bytes
}

/** The serverId as UTF-8, or undefined when it is empty, too long or not valid Unicode. */
export function encodeServerId(serverId: string): Uint8Array | undefined {
  return utf8Within(serverId, 1, MAX_SERVER_ID_BYTES)
}

/** Why these claims cannot be minted; undefined when they can. */
export function claimsProblem(claims: GateTokenClaims): string | undefined {
  if (encodeServerId(claims.serverId) === undefined) {
    return `serverId must be 1-${MAX_SERVER_ID_BYTES} bytes of valid UTF-8`
  }
  const { realms, expiresAt } = claims
  if (realms.length < 1 || realms.length > MAX_TOKEN_REALMS) {
    return `a token names 1-${MAX_TOKEN_REALMS} realms`
  }
  if (new Set(realms).size !== realms.length) return 'a token names each realm once'
  for (const realm of realms) {
    if (utf8Within(realm, 1, MAX_TOKEN_REALM_BYTES) === undefined) {
      return `each realm must be 1-${MAX_TOKEN_REALM_BYTES} bytes of valid UTF-8`
    }
  }
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 1 || expiresAt > MAX_EXPIRES_AT) {
    return `expiresAt must be whole Unix seconds, 1-${MAX_EXPIRES_AT} (2106-02-07T06:28:15Z)`
  }
  return undefined
}

function encodePayload(claims: GateTokenClaims): Uint8Array {
  const parts = [claims.serverId, ...claims.realms].map((text) => encoder.encode(text))
  const size = 4 + 1 + parts.reduce((sum, part) => sum + 1 + part.length, 0)
  const payload = new Uint8Array(size)
  new DataView(payload.buffer).setUint32(0, claims.expiresAt)
  let at = 4
  const put = (bytes: Uint8Array) => {
    payload[at++] = bytes.length
    payload.set(bytes, at)
    at += bytes.length
  }
  put(parts[0] as Uint8Array)
  payload[at++] = claims.realms.length
  for (const realm of parts.slice(1)) put(realm)
  return payload
}

/** The claims of a payload, or undefined unless it is exactly what encodePayload writes. */
function decodePayload(payload: Uint8Array): GateTokenClaims | undefined {
  if (payload.length < 4) return undefined
  const expiresAt = new DataView(payload.buffer, payload.byteOffset).getUint32(0)
  let at = 4
  const take = (): string | undefined => {
    const length = payload[at]
    if (length === undefined || at + 1 + length > payload.length) return undefined
    const bytes = payload.subarray(at + 1, at + 1 + length)
    at += 1 + length
    try {
      return strictUtf8.decode(bytes)
    } catch {
      return undefined
    }
  }
  const serverId = take()
  const count = payload[at++]
  if (serverId === undefined || count === undefined) return undefined
  const realms: string[] = []
  for (let i = 0; i < count; i++) {
    const realm = take()
    if (realm === undefined) return undefined
    realms.push(realm)
  }
  if (at !== payload.length) return undefined
  const claims = { serverId, realms, expiresAt }
  return claimsProblem(claims) === undefined ? claims : undefined
}

/** Mints a gate token. Throws RangeError on an empty secret or claims that cannot be minted. */
export async function mintGateToken(secret: string, claims: GateTokenClaims): Promise<string> {
  if (secret.length === 0) throw new RangeError('the authority secret must not be empty')
  const problem = claimsProblem(claims)
  if (problem !== undefined) throw new RangeError(problem)
  const payload = encodePayload(claims)
  const mac = new Uint8Array(
    await crypto.subtle.sign('HMAC', await hmacKey(secret), macInput(payload))
  )
  return `${TOKEN_PREFIX}.${encodeBase64Url(payload)}.${encodeBase64Url(mac)}`
}

/**
 * Checks a gate token at `now` (Unix seconds). The MAC is checked (in constant time, HMAC
 * verify) before the expiry is looked at; a token of an outdated format is recognised by its
 * prefix alone. Never throws on any input.
 */
export async function verifyGateToken(
  secret: string,
  token: string,
  now: number = Math.floor(Date.now() / 1000)
): Promise<GateTokenCheck> {
  const malformed = { kind: 'invalid', reason: 'malformed' } as const
  if (secret.length === 0 || token.length > MAX_TOKEN_LENGTH) return malformed
  const parts = token.split('.')
  if (parts.length !== 3) return malformed
  if (parts[0] !== TOKEN_PREFIX) {
    return OUTDATED_TOKEN_PREFIXES.includes(parts[0] as string)
      ? { kind: 'invalid', reason: 'outdated_format' }
      : malformed
  }
  const payload = decodeBase64Url(parts[1] as string)
  const mac = decodeBase64Url(parts[2] as string)
  if (payload === undefined || mac === undefined || mac.length !== MAC_BYTES) return malformed
  const claims = decodePayload(payload)
  if (claims === undefined) return malformed
  const key = await hmacKey(secret)
  if (!(await crypto.subtle.verify('HMAC', key, new Uint8Array(mac), macInput(payload)))) {
    return { kind: 'invalid', reason: 'forged' }
  }
  if (now >= claims.expiresAt) return { kind: 'invalid', reason: 'expired', claims }
  return { kind: 'valid', claims }
}
