/**
 * One canonical path per request. Route rules match it, the `uri` check compares it, and it is
 * the path the origin receives: the gate and the origin must not read one request as two paths.
 * What cannot be canonicalised safely is refused (the caller answers 400). docs/request-paths.md
 * gives the reasons, stack by stack. Pure: no Workers or Hono imports.
 */

export interface PathOptions {
  /**
   * Keep `;` segment parameters (matrix parameters) for origins that need them; rules then match
   * the path without them (as Tomcat, Jetty and Spring read it). Default false: `;` is refused.
   */
  allowParameters?: boolean
}

export type PathRefusal =
  | 'not_absolute'
  | 'control'
  | 'backslash'
  | 'delimiter'
  | 'malformed_escape'
  | 'encoded_slash'
  | 'encoded_backslash'
  | 'encoded_delimiter'
  | 'double_encoding'
  | 'invalid_utf8'
  | 'invisible_character'
  | 'unassigned_character'
  | 'lookalike'
  | 'parameters'
  | 'segment_edge'
  | 'ntfs_stream'
  | 'above_root'

export type CanonicalPath =
  | {
      kind: 'canonical'
      /** The canonical path: what is forwarded and what the `uri` check compares. */
      path: string
      /** `path` percent-decoded once, in NFC, segment parameters removed: what rules match. */
      matchPath: string
    }
  | { kind: 'refused'; reason: PathRefusal; message: string }

type Refused = Extract<CanonicalPath, { kind: 'refused' }>

const refuse = (reason: PathRefusal, message: string): Refused => ({
  kind: 'refused',
  reason,
  message,
})

const UNRESERVED = /^[A-Za-z0-9._~-]$/
/** pchar (RFC 3986) beyond the unreserved: kept as sent, raw or escaped. `;` is handled apart. */
const SUB_DELIMS_AND_COLON_AT = new Set([..."!$&'()*+,=:@"])
const HEX2 = /^[0-9A-Fa-f]{2}$/
/**
 * After one decoding this would start an escape again (`%41`, or IIS' `%u0041`): an origin that
 * decodes twice reads another path.
 */
const DOUBLE_ENCODED = /%25([0-9A-Fa-f]{2}|[uU])/
const CONTROL = /\p{Cc}/u
/** Characters some normalisers remove (NFKC_Casefold drops default ignorables) or never show. */
const INVISIBLE = /[\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u
/** Unassigned here, maybe assigned (with an ASCII decomposition) in the origin's Unicode version. */
const UNASSIGNED = /\p{Cn}/u
/**
 * Look-alikes of path syntax that Windows best-fit conversions or IDNA map to ASCII although
 * NFKC does not (checked after NFKC, which maps fullwidth ￥ to ¥): yen and won signs (backslash in code pages 932 and 949), division and fraction
 * slashes, set minus and reverse solidus operators, ideographic full stops.
 */
const BEST_FIT = new Set([
  '\u00a5',
  '\u20a9',
  '\u2044',
  '\u2215',
  '\u2216',
  '\u29f5',
  '\u29f8',
  '\u29f9',
  '\u3002',
  '\uff61',
])

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * The canonical form of a request path (origin-form, without query): unreserved characters
 * decoded, other escapes in upper-case hex, characters outside pchar escaped as UTF-8, dot
 * segments resolved (RFC 3986 §5.2.4), `//` merged. Idempotent; accepts raw request targets as
 * well as `URL.pathname`, and gives both the same path.
 */
export function canonicalizePath(raw: string, options: PathOptions = {}): CanonicalPath {
  if (isPlainPath(raw)) return { kind: 'canonical', path: raw, matchPath: raw }
  return canonicalizeSegments(raw, options)
}

/** canonicalizePath without its shortcut (exported for the test that holds the two equal). */
export function canonicalizeSegments(raw: string, options: PathOptions = {}): CanonicalPath {
  if (!raw.startsWith('/')) return refuse('not_absolute', 'the path must start with /')
  const allowParameters = options.allowParameters ?? false
  // Dot segments resolve first, empty segments counting (RFC 3986 §5.2.4, as WHATWG parsers
  // read it), so a raw target and its parsed form give one path; then `//` merges.
  const stack: Segment[] = []
  const parts = raw.slice(1).split('/')
  let trailingSlash = false
  for (let i = 0; i < parts.length; i++) {
    const last = i === parts.length - 1
    const seg = canonicalSegment(parts[i] ?? '', allowParameters)
    if (seg.kind === 'refused') return seg
    if (seg.text === '.') {
      if (last) trailingSlash = true
    } else if (seg.text === '..') {
      if (stack.length === 0) return refuse('above_root', 'the path climbs above the root')
      stack.pop()
      if (last) trailingSlash = true
    } else {
      stack.push(seg)
      if (last && seg.text === '') trailingSlash = true
    }
  }
  const kept = stack.filter((s) => s.text !== '')
  const tail = trailingSlash && kept.length > 0 ? '/' : ''
  return {
    kind: 'canonical',
    path: `/${kept.map((s) => s.text).join('/')}${tail}`,
    matchPath: `/${kept.map((s) => s.name).join('/')}${tail}`.normalize('NFC'),
  }
}

/**
 * Unreserved characters, sub-delims, `:` and `@` only (no `%`, `;`, space or non-ASCII), no empty
 * segment but a trailing one, no segment ending in `.` (so no dot segment), no `:$`: every step
 * of canonicalizePath leaves such a path as it is. Most requests take this way.
 */
const PLAIN_PATH = /^(?:\/[A-Za-z0-9\-._~!$&'()*+,=:@]*)+$/
function isPlainPath(raw: string): boolean {
  return (
    PLAIN_PATH.test(raw) && !raw.includes('//') && !/\.(?:\/|$)/.test(raw) && !raw.includes(':$')
  )
}

/** Printable ASCII only: case folding is lower-casing. */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/

/**
 * Case folding for rules that match every spelling: Unicode upper then lower case (so `ı`, `ſ`
 * and `ß` read as `i`, `s` and `ss`, as Java's and .NET's upper-casing comparisons read them),
 * accents removed (as Windows best-fit conversions read `ā` as `a`).
 */
export function foldForMatch(s: string): string {
  if (PRINTABLE_ASCII.test(s)) return s.toLowerCase()
  return foldUnicode(s)
}

/** foldForMatch without its ASCII shortcut (exported for the test that holds the two equal). */
export function foldUnicode(s: string): string {
  return s.normalize('NFKD').replace(/\p{M}/gu, '').toUpperCase().toLowerCase()
}

interface Segment {
  kind: 'canonical'
  /** Canonical spelling. */
  text: string
  /** Decoded, without `;` parameters. */
  name: string
}

function canonicalSegment(raw: string, allowParameters: boolean): Segment | Refused {
  let text = ''
  let high: number[] = []
  // Escaped bytes >= 0x80 must form whole, well-formed UTF-8 characters (no overlong `%C0%AF`).
  const flushHigh = (): Refused | undefined => {
    if (high.length === 0) return undefined
    let decoded: string
    try {
      decoded = utf8.decode(Uint8Array.from(high))
    } catch {
      return refuse('invalid_utf8', 'percent-escapes that are not well-formed UTF-8')
    }
    for (const ch of decoded) {
      const bad = checkNonAscii(ch)
      if (bad) return bad
    }
    text += high.map(hexEscape).join('')
    high = []
    return undefined
  }

  for (let i = 0; i < raw.length; ) {
    const ch = raw[i] as string
    if (ch === '%') {
      const hex = raw.slice(i + 1, i + 3)
      if (!HEX2.test(hex)) return refuse('malformed_escape', 'a % not followed by two hex digits')
      i += 3
      const byte = Number.parseInt(hex, 16)
      if (byte >= 0x80) {
        high.push(byte)
        continue
      }
      const bad = flushHigh() ?? checkEscapedAscii(byte)
      if (bad) return bad
      const c = String.fromCharCode(byte)
      text += UNRESERVED.test(c) ? c : hexEscape(byte)
      continue
    }
    const bad = flushHigh()
    if (bad) return bad
    const cp = raw.codePointAt(i) as number
    const c = String.fromCodePoint(cp)
    i += c.length
    if (cp < 0x80) {
      const badAscii = checkRawAscii(c, allowParameters)
      if (badAscii) return badAscii
      text += UNRESERVED.test(c) || SUB_DELIMS_AND_COLON_AT.has(c) || c === ';' ? c : hexEscape(cp)
      continue
    }
    if (!c.isWellFormed()) return refuse('invalid_utf8', 'a lone surrogate')
    const badNonAscii = checkNonAscii(c)
    if (badNonAscii) return badNonAscii
    text += encodeURIComponent(c)
  }
  const bad = flushHigh()
  if (bad) return bad
  if (DOUBLE_ENCODED.test(text)) {
    return refuse('double_encoding', 'an escaped %: decoding twice would give another path')
  }
  return checkSegment(text, allowParameters)
}

function checkEscapedAscii(byte: number): Refused | undefined {
  if (byte < 0x20 || byte === 0x7f) return refuse('control', 'an escaped control character')
  if (byte === 0x2f) return refuse('encoded_slash', 'an escaped / (%2F)')
  if (byte === 0x5c) return refuse('encoded_backslash', 'an escaped \\ (%5C)')
  // A decode-then-parse origin would cut the path at ? or #, or strip a ; parameter.
  if (byte === 0x3f || byte === 0x23 || byte === 0x3b) {
    return refuse('encoded_delimiter', 'an escaped ?, # or ; (%3F, %23, %3B)')
  }
  return undefined
}

function checkRawAscii(c: string, allowParameters: boolean): Refused | undefined {
  if (CONTROL.test(c)) return refuse('control', 'a control character')
  if (c === '\\') return refuse('backslash', 'a \\ (read as / by IIS and WHATWG URL parsers)')
  if (c === '?' || c === '#') return refuse('delimiter', 'a ? or # inside the path')
  if (c === ';' && !allowParameters) {
    return refuse('parameters', 'a ; parameter in a path segment')
  }
  return undefined
}

/** Non-ASCII is kept (escaped as UTF-8) unless some stack could read it as ASCII or not at all. */
function checkNonAscii(ch: string): Refused | undefined {
  if (CONTROL.test(ch)) return refuse('control', 'a control character')
  if (INVISIBLE.test(ch)) return refuse('invisible_character', 'an invisible or format character')
  if (UNASSIGNED.test(ch)) return refuse('unassigned_character', 'an unassigned code point')
  const nfkc = ch.normalize('NFKC')
  if (hasAscii(nfkc) || hasAscii(ch.toLowerCase()) || [...nfkc].some((c) => BEST_FIT.has(c))) {
    return refuse('lookalike', 'a character that normalises to ASCII (e.g. fullwidth forms)')
  }
  return undefined
}

function checkSegment(text: string, allowParameters: boolean): Segment | Refused {
  const semicolon = allowParameters ? text.indexOf(';') : -1
  const nameText = semicolon === -1 ? text : text.slice(0, semicolon)
  const name = decodeURIComponent(nameText)
  if (semicolon !== -1 && (name === '' || name === '.' || name === '..')) {
    // Tomcat reads `..;x` as `..` and `/;x/` as `//`.
    return refuse('parameters', 'parameters on an empty or dot segment')
  }
  if (name !== '.' && name !== '..') {
    // Windows drops trailing dots and spaces; Spring's trimTokens and Java's strip() trim Unicode
    // spaces at both ends. Checked again without accents: `..\u0301` is `..` to best-fit readers.
    const bare = foldForMatch(name)
    if (/^\s|[\s.]$/u.test(name) || /^\s|[\s.]$/u.test(bare) || (name !== '' && bare === '')) {
      return refuse(
        'segment_edge',
        'a segment that starts with a space, ends with a dot or space, or is only accents'
      )
    }
  }
  if (decodeURIComponent(text).includes(':$')) {
    // NTFS streams: IIS serves `/admin::$INDEX_ALLOCATION/x` from `/admin/x`.
    return refuse('ntfs_stream', 'an NTFS stream name (:$) in a segment')
  }
  return { kind: 'canonical', text, name }
}

function hasAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x80) return true
  return false
}

function hexEscape(byte: number): string {
  return `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
}

/**
 * The path and query of a serialised http(s) URL (a Request's `url`), as `new URL(url)` gives
 * them, without parsing it again: after `scheme://`, the first `/` starts the path (a host or
 * userinfo has none unescaped) and the first `?` the query (a path has none unescaped).
 */
export function pathAndQuery(url: string): { pathname: string; search: string } {
  const slash = url.indexOf('/', url.indexOf('://') + 3)
  if (slash === -1) return { pathname: '/', search: '' }
  const q = url.indexOf('?', slash)
  if (q === -1) return { pathname: url.slice(slash), search: '' }
  // An empty query (`/x?`) is no query, as URL.search reads it.
  return { pathname: url.slice(slash, q), search: q === url.length - 1 ? '' : url.slice(q) }
}

/**
 * Does the `uri` directive name the request target (RFC 7616 §3.4.6)? Accepts the origin-form
 * and the absolute-form (old Android, erratum 7005). Paths are compared canonical
 * (request-path.ts) and then percent-decoded, queries percent-decoded but for their syntax
 * (decodeQuery), because clients differ in which characters they escape and whether they resolve
 * dot segments.
 */

/** `target.path` is the canonical request path, `target.search` the query as received. */
export function uriMatchesTarget(
  directive: string,
  target: { path: string; search: string }
): boolean {
  if (directive === target.path + target.search) return true
  let candidate = directive
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(candidate)) {
    try {
      const u = new URL(candidate)
      candidate = u.pathname + u.search
    } catch {
      return false
    }
  }
  const q = candidate.indexOf('?')
  const path = q === -1 ? candidate : candidate.slice(0, q)
  // An empty query (`/x?`) is no query, as the target's is read (pathAndQuery).
  const query = q === -1 || q === candidate.length - 1 ? '' : candidate.slice(q)
  // Parameters are compared, not refused: which paths may carry them is the router's decision.
  const mine = canonicalizePath(path, { allowParameters: true })
  if (mine.kind === 'refused') return false
  return (
    decodeSafely(mine.path) === decodeSafely(target.path) &&
    decodeQuery(query) === decodeQuery(target.search)
  )
}

/**
 * Escapes of the query's own syntax (`&`, `=`, `+`, `;`, `#`, `%`) are not the character: `?a=%26b`
 * is one parameter, `?a=&b` two. They stay escaped (upper-case hex) so that a uri cannot vouch for
 * a query the origin reads otherwise; every other escape is decoded, as clients escape differently.
 */
const QUERY_SYNTAX_ESCAPE = /(%(?:2[356bB]|3[bBdD]))/
function decodeQuery(s: string): string {
  return s
    .split(QUERY_SYNTAX_ESCAPE)
    .map((part, i) => (i % 2 === 1 ? part.toUpperCase() : decodeSafely(part)))
    .join('')
}

function decodeSafely(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}
