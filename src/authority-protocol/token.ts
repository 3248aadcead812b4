/**
 * Gate tokens: how a gate proves its server identity to the authority.
 *
 *   token = "v1." base64url(serverId UTF-8) "." base64url(HMAC-SHA-256(secret, label | serverId))
 *   label = "digest-gate token v1:"
 *
 * The authority holds the secret and mints one token per gate (`npm run users -- token <id>`);
 * a token names exactly one serverId and cannot be altered to name another. Pure Web Crypto.
 */
import { decodeBase64Url, encodeBase64Url } from '../digest/base64url.ts'
import { MAX_SERVER_ID_BYTES } from '../digest/tokens.ts'
import { TOKEN_MAC_LABEL, TOKEN_PREFIX } from './v1.ts'

const MAC_BYTES = 32
/** Longest well-formed token: prefix, two dots, the largest serverId and the MAC, encoded. */
const MAX_TOKEN_LENGTH =
  TOKEN_PREFIX.length +
  2 +
  Math.ceil((MAX_SERVER_ID_BYTES * 4) / 3) +
  Math.ceil((MAC_BYTES * 4) / 3)

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

function macInput(serverId: Uint8Array): Uint8Array<ArrayBuffer> {
  const input = new Uint8Array(label.length + serverId.length)
  input.set(label)
  input.set(serverId, label.length)
  return input
}

/** The serverId as UTF-8, or undefined when it is empty, too long or not valid Unicode. */
export function encodeServerId(serverId: string): Uint8Array | undefined {
  const bytes = encoder.encode(serverId)
  if (bytes.length < 1 || bytes.length > MAX_SERVER_ID_BYTES) return undefined
  // A lone surrogate encodes as U+FFFD and would never round-trip.
  if (strictUtf8.decode(bytes) !== serverId) return undefined
  return bytes
}

/** Mints the token of one gate. Throws RangeError on an empty secret or an invalid serverId. */
export async function mintGateToken(secret: string, serverId: string): Promise<string> {
  if (secret.length === 0) throw new RangeError('the authority secret must not be empty')
  const id = encodeServerId(serverId)
  if (id === undefined) {
    throw new RangeError(`serverId must be 1-${MAX_SERVER_ID_BYTES} bytes of valid UTF-8`)
  }
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', await hmacKey(secret), macInput(id)))
  return `${TOKEN_PREFIX}.${encodeBase64Url(id)}.${encodeBase64Url(mac)}`
}

/**
 * The serverId a token was minted for, or undefined for a malformed, foreign or forged token.
 * Never throws on any input; the MAC check is constant-time (HMAC verify).
 */
export async function verifyGateToken(secret: string, token: string): Promise<string | undefined> {
  if (secret.length === 0 || token.length > MAX_TOKEN_LENGTH) return undefined
  const parts = token.split('.')
  if (parts.length !== 3 || parts[0] !== TOKEN_PREFIX) return undefined
  const id = decodeBase64Url(parts[1] as string)
  const mac = decodeBase64Url(parts[2] as string)
  if (id === undefined || mac === undefined || mac.length !== MAC_BYTES) return undefined
  let serverId: string
  try {
    serverId = strictUtf8.decode(id)
  } catch {
    return undefined
  }
  if (encodeServerId(serverId) === undefined) return undefined
  const key = await hmacKey(secret)
  const valid = await crypto.subtle.verify('HMAC', key, new Uint8Array(mac), macInput(id))
  return valid ? serverId : undefined
}
