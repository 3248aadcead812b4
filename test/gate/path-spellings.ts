/**
 * Test support for path canonicalisation: a grammar of hostile spellings of paths around the
 * demo routes, and two models of how an origin reads the path the gate forwards.
 *
 * The lenient origin reads a path the most permissive way any common stack does: it decodes
 * repeatedly (IIS `%u`, overlong UTF-8), applies NFKC and best-fit mappings, drops invisible
 * characters, reads `\` as `/`, cuts at NUL, `?` and `#`, strips `;params` (Tomcat, Jetty, Spring),
 * NTFS stream names (IIS), leading and trailing spaces and trailing dots (Windows, Spring
 * trimTokens), merges slashes (nginx, Spring), resolves dot segments (clamping at the root), and
 * folds case and accents (IIS, Express, best-fit). The strict origin decodes once and nothing more.
 */
import fc from 'fast-check'
import type { RouteRule } from '../../src/gate/routes.ts'

/** The demo routes (wrangler.toml): what the property is stated against. */
export const DEMO_RULES: RouteRule[] = [
  { path: '/public/*', access: 'public' },
  { path: '/admin/*', groups: ['admin'] },
  { path: '/*', access: 'authenticated' },
]

/** The hostile spellings reproduced against `npm start`, by who sent them. */
export const REPORTED = {
  /** bob, who is not in group admin, got 200 from the origin for these. */
  bob: ['/%61dmin/panel', '//admin/panel', '/Admin/panel', '/admin;x=1/panel', '/admin%2Fpanel'],
  /** an anonymous client got 200 from the origin for these. */
  anonymous: [
    '/public/..;/private/secret',
    '/public/..%2Fprivate/secret',
    '/public/..%5Cprivate/secret',
  ],
}

/** Is a path read by a model inside an area (`/public`, `/admin`)? */
export function inside(read: string, area: string): boolean {
  return read === area || read.startsWith(`${area}/`)
}

// ---------------------------------------------------------------------------------------------
// The origin models

/** What a strict origin reads: the path decoded once; matrix parameters stripped if asked. */
export function strictRead(path: string, stripParameters = false): string {
  const segments = path.split('/').map((s) => (stripParameters ? s.replace(/;.*$/, '') : s))
  return decodeLenient(segments.join('/'))
}

/** What the most lenient origin reads (lower-case, accents removed). */
export function lenientRead(path: string): string {
  let s = path
  for (let i = 0; i < 10; i++) {
    const next = lenientStep(s)
    if (next === s) break
    s = next
  }
  return lenientFold(s)
}

/** Case and accent folding as IIS, Express (case-insensitive routing) and best-fit read. */
export function lenientFold(s: string): string {
  return s
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/\u0130/g, 'I')
    .toUpperCase()
    .toLowerCase()
}

const BEST_FIT: Record<string, string> = {
  '\u00a5': '\\',
  '\u20a9': '\\',
  '\u2044': '/',
  '\u2215': '/',
  '\u2216': '\\',
  '\u29f5': '\\',
  '\u29f8': '/',
  '\u29f9': '\\',
  '\u3002': '.',
  '\uff61': '.',
}

function lenientStep(input: string): string {
  // NFKC, then accents removed (as best-fit conversions do) before segments are read.
  let s = decodeLenient(input).normalize('NFKC').normalize('NFKD').replace(/\p{M}/gu, '')
  s = [...s].map((c) => BEST_FIT[c] ?? c).join('')
  s = s.replace(/[\p{Cf}\p{Default_Ignorable_Code_Point}]/gu, '')
  // WHATWG URL parsers drop tabs and newlines; C stacks stop at NUL; `?` and `#` end the path.
  s = s.replace(/[\t\n\r]/g, '')
  s = (s.split('\u0000')[0] ?? '').split(/[?#]/)[0] ?? ''
  s = s.replace(/\\/g, '/')
  const out: string[] = []
  for (const part of s.split('/')) {
    let seg = part.replace(/;.*$/, '')
    // NTFS: `admin::$INDEX_ALLOCATION` and `admin:$i30:$INDEX_ALLOCATION` are the directory admin.
    if (seg.includes(':$')) seg = seg.slice(0, seg.indexOf(':'))
    seg = seg.trim()
    if (seg !== '.' && seg !== '..') seg = seg.replace(/[. ]+$/, '')
    if (seg === '..') out.pop()
    else if (seg !== '' && seg !== '.') out.push(seg)
  }
  // Slashes merged, the root clamps `..`, and a trailing slash is dropped (Express' non-strict
  // routing and most file servers serve "/x/" as "/x").
  return `/${out.join('/')}`
}

/** %XX (bytes as UTF-8, overlong forms accepted as old IIS did, else Latin-1) and IIS %uXXXX. */
function decodeLenient(s: string): string {
  let out = ''
  let bytes: number[] = []
  const flush = () => {
    out += utf8Lenient(bytes)
    bytes = []
  }
  for (let i = 0; i < s.length; ) {
    if (s[i] === '%' && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(s.slice(i + 1, i + 3), 16))
      i += 3
      continue
    }
    flush()
    if (s[i] === '%' && /^[uU][0-9A-Fa-f]{4}$/.test(s.slice(i + 1, i + 6))) {
      out += String.fromCharCode(Number.parseInt(s.slice(i + 2, i + 6), 16))
      i += 6
      continue
    }
    out += s[i]
    i++
  }
  flush()
  return out
}

function utf8Lenient(bytes: number[]): string {
  let out = ''
  for (let i = 0; i < bytes.length; ) {
    const b0 = bytes[i] as number
    const len = b0 >= 0xf0 && b0 < 0xf8 ? 4 : b0 >= 0xe0 ? 3 : b0 >= 0xc0 ? 2 : 1
    const tail = bytes.slice(i + 1, i + len)
    if (len > 1 && tail.length === len - 1 && tail.every((b) => (b & 0xc0) === 0x80)) {
      let cp = b0 & (0xff >> (len + 1))
      for (const b of tail) cp = (cp << 6) | (b & 0x3f)
      out += cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) ? String.fromCodePoint(cp) : '\ufffd'
      i += len
    } else {
      out += String.fromCharCode(b0)
      i++
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// The grammar

const hex2 = (n: number, upper: boolean) => {
  const h = n.toString(16).padStart(2, '0')
  return `%${upper ? h.toUpperCase() : h}`
}

/** One spelling of one ASCII character: mostly itself, its other case or its escape. */
const charSpelling = (c: string): fc.Arbitrary<string> => {
  const code = c.charCodeAt(0)
  const rare: fc.Arbitrary<string>[] = [
    fc.boolean().map((u) => `%25${hex2(code, u).slice(1)}`),
    fc.constant(`%2525${hex2(code, true).slice(1)}`),
    fc.constant(`%u00${hex2(code, true).slice(1)}`),
    fc.constant(`%25u00${hex2(code, true).slice(1)}`),
    // Overlong two-byte UTF-8.
    fc.constant(hex2(0xc0 | (code >> 6), true) + hex2(0x80 | (code & 0x3f), true)),
    // Fullwidth form, raw or escaped.
    fc.boolean().map((escaped) => {
      const full = String.fromCodePoint(0xff00 + code - 0x20)
      return escaped ? encodeURIComponent(full) : full
    }),
    // An accent on the letter (precomposed or combining, raw or escaped).
    fc.tuple(fc.boolean(), fc.boolean()).map(([nfc, escaped]) => {
      const s = `${c}\u0301`
      const t = nfc ? s.normalize('NFC') : s
      return escaped ? encodeURIComponent(t) : t
    }),
  ]
  const lookalike: Record<string, string[]> = {
    i: ['\u0131', '\u0130', '%C4%B1'],
    s: ['\u017f', '%C5%BF'],
    k: ['\u212a'],
    a: ['\u0430'],
  }
  for (const l of lookalike[c] ?? []) rare.push(fc.constant(l))
  return fc.oneof(
    { weight: 40, arbitrary: fc.constant(c) },
    { weight: 6, arbitrary: fc.constant(c.toUpperCase()) },
    { weight: 6, arbitrary: fc.boolean().map((u) => hex2(code, u)) },
    { weight: 4, arbitrary: fc.oneof(...rare) }
  )
}

const WORDS = ['admin', 'public', 'private', 'secret', 'panel', 'x']

const wordSpelling: fc.Arbitrary<string> = fc
  .constantFrom(...WORDS)
  .chain((w) => fc.tuple(...[...w].map(charSpelling)).map((cs) => cs.join('')))

/** What may follow a word inside its segment. */
const SEGMENT_SUFFIX = [
  ';',
  ';x=1',
  ';jsessionid=0',
  '%3B',
  '%3bx=1',
  '.',
  '..',
  '%2e',
  ' ',
  '%20',
  '%09',
  '%00',
  '%0a',
  '::$INDEX_ALLOCATION',
  ':$i30:$INDEX_ALLOCATION',
  '::$DATA',
  '%3F',
  '%23',
  '%E2%80%8B',
  '%C2%AD',
  '%EF%BB%BF',
  '\u200b',
  '~1',
  '.json',
  '%',
  '%zz',
  '%2',
]

const word: fc.Arbitrary<string> = fc
  .tuple(
    fc.oneof(
      { weight: 12, arbitrary: fc.constant('') },
      { weight: 1, arbitrary: fc.constantFrom('%20', ' ', '%E2%80%8B') }
    ),
    wordSpelling,
    fc.oneof(
      { weight: 8, arbitrary: fc.constant('') },
      { weight: 3, arbitrary: fc.constantFrom(...SEGMENT_SUFFIX) }
    )
  )
  .map(([pre, w, suf]) => pre + w + suf)

const DOT_SEGMENTS = [
  '.',
  '..',
  '%2e',
  '%2E',
  '.%2E',
  '%2e.',
  '%2e%2e',
  '%2E%2E',
  '..;',
  '..;x=1',
  '.;',
  '%2e%2e;',
  '%252e%252e',
  '%252E',
  '%c0%ae%c0%ae',
  '%u002e%u002e',
  '..%00',
  '..%20',
  '...',
  '.%E3%80%82',
  '%EF%BC%8E%EF%BC%8E',
  '..\u0301',
  '.%CC%81.',
  '%CC%81',
]

const SEPARATORS = [
  '/',
  '//',
  '///',
  '\\',
  '/\\',
  '%2F',
  '%2f',
  '%5C',
  '%5c',
  '%252F',
  '%255C',
  '%25252F',
  '/./',
  '/%2e/',
  '%C0%AF',
  '%c0%af',
  '%E2%88%95',
  '%EF%BC%8F',
  '%EF%BC%BC',
  '\u00a5',
  '%C2%A5',
  '%u002f',
  ';/',
]

const part = fc.oneof(
  { weight: 8, arbitrary: word },
  { weight: 2, arbitrary: fc.constantFrom(...DOT_SEGMENTS) }
)
const separator = fc.oneof(
  { weight: 10, arbitrary: fc.constant('/') },
  { weight: 3, arbitrary: fc.constantFrom(...SEPARATORS) }
)
const start = fc.oneof(
  { weight: 6, arbitrary: fc.constant('/') },
  { weight: 3, arbitrary: fc.constantFrom('//', '/./', '/../', '/;x/', '/%2e/', '/\\') }
)
const TAILS = ['', '', '', '/', '//', '/.', '/..', '/%2e', '.', '%20', ';', '/;x']

/** Hostile request paths around the demo routes. */
export const hostilePath: fc.Arbitrary<string> = fc
  .tuple(
    start,
    fc.array(fc.tuple(part, separator), { maxLength: 4 }),
    part,
    fc.constantFrom(...TAILS)
  )
  .map(([s, pairs, last, tail]) => s + pairs.map(([p, q]) => p + q).join('') + last + tail)

/** The path a WHATWG URL parser (workerd, Node, browsers) makes of a raw request path. */
export function whatwgPath(raw: string): string {
  return new URL(`https://gate.test${raw}`).pathname
}
