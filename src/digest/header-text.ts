/**
 * How non-ASCII text in a header value is read.
 *
 * A header value reaches us as a JS string whose origin we cannot see:
 * - workerd decodes request header bytes as UTF-8 (invalid bytes become U+FFFD, measured with
 *   wrangler dev), so a browser's or curl's raw UTF-8 `Jäsøn` arrives already decoded;
 * - Node and fetch implementations that follow the Fetch standard hand out each byte as one
 *   Latin-1 code point, so the same name arrives as `JÃ¤sÃ¸n`.
 *
 * Rule: a value whose code points are all <= 0xFF, with at least one >= 0x80, that forms valid
 * UTF-8 when read back as bytes, is decoded as UTF-8 (raw UTF-8 from Chromium, Firefox, curl).
 * Anything else is kept as is: invalid UTF-8 stays Latin-1 (python-requests sends Latin-1) and
 * code points above 0xFF were decoded upstream. The hash functions then see the string as UTF-8,
 * which is what every client tested here (browsers, curl, wget, python-requests) hashes.
 * The one ambiguity: a genuine Latin-1 string that happens to be valid UTF-8 (`Ã¤`) is read as
 * UTF-8 (`ä`); no real client name hits it.
 */
// ignoreBOM keeps a leading U+FEFF instead of silently dropping it.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

const NON_ASCII = /[\u0080-\uffff]/
const ABOVE_LATIN1 = /[\u0100-\uffff]/

export function decodeHeaderText(value: string): string {
  if (!NON_ASCII.test(value) || ABOVE_LATIN1.test(value)) return value
  const bytes = new Uint8Array(value.length)
  for (let i = 0; i < value.length; i++) bytes[i] = value.charCodeAt(i)
  try {
    return strictUtf8.decode(bytes)
  } catch {
    return value
  }
}

/** True when the string is printable ASCII (SP and VCHAR) only. */
export function isPrintableAscii(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x20 || c > 0x7e) return false
  }
  return true
}
