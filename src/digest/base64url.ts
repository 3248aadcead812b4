/** base64url without padding (RFC 4648 §5): survives every client's quoting and splitting. */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/** Char code -> 6-bit value, -1 outside the alphabet. */
const VALUE_OF = new Int8Array(128).fill(-1)
for (let i = 0; i < ALPHABET.length; i++) VALUE_OF[ALPHABET.charCodeAt(i)] = i

export function encodeBase64Url(bytes: Uint8Array): string {
  let out = ''
  let i = 0
  for (; i + 2 < bytes.length; i += 3) {
    const n =
      ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number)
    out +=
      ALPHABET.charAt(n >> 18) +
      ALPHABET.charAt((n >> 12) & 63) +
      ALPHABET.charAt((n >> 6) & 63) +
      ALPHABET.charAt(n & 63)
  }
  const rest = bytes.length - i
  if (rest === 1) {
    const n = bytes[i] as number
    out += ALPHABET.charAt(n >> 2) + ALPHABET.charAt((n << 4) & 63)
  } else if (rest === 2) {
    const n = ((bytes[i] as number) << 8) | (bytes[i + 1] as number)
    out +=
      ALPHABET.charAt(n >> 10) + ALPHABET.charAt((n >> 4) & 63) + ALPHABET.charAt((n << 2) & 63)
  }
  return out
}

/**
 * Returns undefined on any character outside the alphabet, padding, an impossible length, or
 * non-zero unused bits in the last character: every byte string has exactly one accepted text.
 */
export function decodeBase64Url(text: string): Uint8Array | undefined {
  const tail = text.length % 4
  if (tail === 1) return undefined
  const out = new Uint8Array(Math.floor(text.length / 4) * 3 + (tail === 0 ? 0 : tail - 1))
  let acc = 0
  let bits = 0
  let o = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    const v = code < 128 ? (VALUE_OF[code] as number) : -1
    if (v < 0) return undefined
    acc = ((acc << 6) | v) & 0xffffff
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out[o++] = (acc >> bits) & 0xff
    }
  }
  // Leftover bits (2 or 4) must be zero, or two texts would decode to the same bytes.
  if ((acc & ((1 << bits) - 1)) !== 0) return undefined
  return out
}
