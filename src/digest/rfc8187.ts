/**
 * RFC 8187 ext-value, for `username*` (RFC 7616 §3.4):
 *   ext-value = charset "'" [ language ] "'" value-chars
 * We produce UTF-8 only; we read UTF-8 and ISO-8859-1 (the two RFC 5987 required of recipients).
 */
const ATTR_CHAR = new Uint8Array(128)
for (let c = 0; c < 128; c++) {
  const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
  if (alnum) ATTR_CHAR[c] = 1
}
for (const ch of '!#$&+-.^_`|~') ATTR_CHAR[ch.charCodeAt(0)] = 1

const HEX = '0123456789ABCDEF'
const utf8 = new TextEncoder()
// ignoreBOM keeps a leading U+FEFF instead of silently dropping it.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export function encodeExtValue(text: string): string {
  let out = "UTF-8''"
  for (const byte of utf8.encode(text)) {
    if (byte < 128 && ATTR_CHAR[byte] === 1) out += String.fromCharCode(byte)
    else out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`
  }
  return out
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30
  if (code >= 0x41 && code <= 0x46) return code - 0x37
  if (code >= 0x61 && code <= 0x66) return code - 0x57
  return -1
}

/** Decoded text, or undefined when the ext-value is malformed or not valid in its charset. */
export function decodeExtValue(extValue: string): string | undefined {
  const first = extValue.indexOf("'")
  const second = first < 0 ? -1 : extValue.indexOf("'", first + 1)
  if (second < 0) return undefined
  const charset = extValue.slice(0, first).toLowerCase()
  if (charset !== 'utf-8' && charset !== 'iso-8859-1') return undefined
  if (!/^[A-Za-z0-9-]*$/.test(extValue.slice(first + 1, second))) return undefined
  const chars = extValue.slice(second + 1)
  const bytes = new Uint8Array(chars.length)
  let n = 0
  for (let i = 0; i < chars.length; i++) {
    const c = chars.charCodeAt(i)
    if (c === 0x25) {
      const hi = hexValue(chars.charCodeAt(i + 1))
      const lo = hexValue(chars.charCodeAt(i + 2))
      if (hi < 0 || lo < 0) return undefined
      bytes[n++] = (hi << 4) | lo
      i += 2
    } else if (c < 128 && ATTR_CHAR[c] === 1) {
      bytes[n++] = c
    } else {
      return undefined
    }
  }
  const used = bytes.subarray(0, n)
  if (charset === 'iso-8859-1') return String.fromCharCode(...used)
  try {
    return strictUtf8.decode(used)
  } catch {
    return undefined
  }
}
