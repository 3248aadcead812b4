/**
 * Hostile Authorization headers, generated deterministically (fast-check arbitraries sampled with
 * fixed seeds), in the categories the e2e hostile suite sends to the real gate:
 *
 *   text        `Digest ` + arbitrary Latin-1 text, and other schemes
 *   soup        directive lists: unknown and duplicate names, bad quoting, empty values, separators
 *   huge        valid-shaped headers with one huge value, or with thousands of directives
 *   bytes       valid-shaped headers carrying non-UTF-8 bytes (invalid sequences, overlongs,
 *               encoded surrogates) and broken RFC 8187 `username*` values
 *   forged      valid-shaped headers that an attacker can produce: forged or mutated nonces and
 *               opaques, genuine nonces with a wrong realm or with an algorithm, qop or userhash
 *               that was not offered, or a uri that is not the request target
 *   raw         whole requests over a raw socket: control bytes, bare CR/LF, obs-fold, duplicate
 *               Authorization lines, malformed header lines
 *
 * Every header of these categories must be refused before any storage or authority I/O. The
 * `details` category is different: genuine nonce and opaque with hostile values in the other
 * directives, which the gate may legitimately send to the authority (which refuses them).
 * Strings hold Latin-1 only (one char = one byte on the wire).
 */
import fc from 'fast-check'

/** A genuine challenge of the gate under test (nonce and opaque as it minted them). */
export interface Genuine {
  nonce: string
  opaque: string
}

export interface Target {
  realm: string
  /** Path of the request; the `uri` directive of valid-shaped headers names it. */
  path: string
  /** Algorithms the gate offers / does not offer (names as on the wire). */
  offered: string[]
  notOffered: string[]
}

export interface Forgeries {
  /** Nonces with a valid layout that the gate must refuse (foreign key, other server, future). */
  mintedElsewhere: string[]
}

export interface Generated {
  category: string
  value: string
}

const sample = <T>(arb: fc.Arbitrary<T>, seed: number, count: number): T[] =>
  fc.sample(arb, { seed, numRuns: count })

// --- building blocks --------------------------------------------------------------------------

/** Any Latin-1 character a header value can carry on the wire (no CTLs, no DEL). */
const latin1Char = fc
  .oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
    { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) }
  )
  .map((code) => String.fromCharCode(code))

const latin1Text = (maxLength: number) => fc.string({ unit: latin1Char, maxLength })

const hexChar = fc.constantFrom(...'0123456789abcdefABCDEF')
const hex = (min: number, max: number) =>
  fc.string({ unit: hexChar, minLength: min, maxLength: max })
const b64uChar = fc.constantFrom(
  ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
)
const b64u = (min: number, max: number) =>
  fc.string({ unit: b64uChar, minLength: min, maxLength: max })

/** Byte sequences that are not UTF-8, as Latin-1 strings. */
const BAD_UTF8 = [
  '\xff',
  '\xfe\xff',
  '\xc3\x28',
  '\xa0\xa1',
  '\xe2\x82',
  '\xe2\x28\xa1',
  '\xf0\x90\x28\xbc',
  '\xc0\xaf', // overlong '/'
  '\xe0\x80\xaf',
  '\xed\xa0\x80', // encoded surrogate
  '\xed\xbf\xbf',
  '\xf8\x88\x80\x80\x80',
  '\xf4\x90\x80\x80', // above U+10FFFF
  '\x80',
  '\xc3\xa4\xff',
]
const badUtf8 = fc
  .tuple(latin1Text(12), fc.constantFrom(...BAD_UTF8), latin1Text(12))
  .map(([a, bad, b]) => a + bad + b)

const quote = (value: string) => `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`

const DIRECTIVE_NAMES = [
  'username',
  'username*',
  'realm',
  'nonce',
  'uri',
  'response',
  'algorithm',
  'qop',
  'nc',
  'cnonce',
  'opaque',
  'userhash',
  'charset',
  'stale',
  'domain',
  'auth-param',
  'USERNAME',
  'Nonce',
  'x',
]

/** A value in one of the ways a broken or hostile client might write it. */
const anyValue = fc.oneof(
  latin1Text(40).map(quote),
  latin1Text(40).map((v) => `"${v}"`), // unescaped quotes and backslashes inside
  latin1Text(40).map((v) => `"${v}`), // unterminated
  latin1Text(40).map((v) => `${v}"`),
  latin1Text(40),
  fc.constant(''),
  fc.constant('""'),
  fc.constant('"\\'),
  fc.constant('"a"b"'),
  fc.constant('"a\\"'),
  fc.constant('a b c'),
  fc.constant('=='),
  hex(0, 70),
  b64u(0, 90)
)

const separator = fc.constantFrom(', ', ',', ' , ', ',,', ', ,', ';', ' ', '\t,', ',\t')
const equals = fc.constantFrom('=', ' = ', '=', '==', '\t=\t', '')

const directive = fc
  .tuple(fc.constantFrom(...DIRECTIVE_NAMES), equals, anyValue)
  .map(([name, eq, value]) => `${name}${eq}${value}`)

const scheme = fc.constantFrom('Digest ', 'digest ', 'DIGEST  ', 'Digest\t', 'Digest', 'Digest ,')

// --- categories -------------------------------------------------------------------------------

const FIXED_TEXT = [
  '',
  ' ',
  'Digest',
  'Digest ',
  'Basic YWxpY2U6d29uZGVybGFuZA==',
  'Bearer abc',
  'Negotiate YIIB',
  'Digest Basic realm="x"',
  'Digest username="alice", Digest username="bob"',
  'Digest abc==',
  'Digest ===',
  'Digest ,,,,,,,,',
  'Digest "',
  'Digest \\',
]

export function textCases(seed: number, count: number): Generated[] {
  const random = sample(
    fc.tuple(scheme, latin1Text(300)).map(([s, t]) => s + t),
    seed,
    count - FIXED_TEXT.length
  )
  return [...FIXED_TEXT, ...random].map((value) => ({ category: 'text', value }))
}

export function soupCases(seed: number, count: number): Generated[] {
  const soup = fc
    .tuple(
      scheme,
      fc.array(fc.tuple(directive, separator), { maxLength: 40 }),
      fc.constantFrom('', ',', ' ', ', x')
    )
    .map(([s, items, tail]) => s + items.map(([d, sep]) => d + sep).join('') + tail)
  return sample(soup, seed, count).map((value) => ({ category: 'soup', value }))
}

/** The directives of a plausible request, as [name, written value] pairs. */
function shape(
  target: Target,
  nonce: string,
  opaque: string | undefined,
  overrides: Record<string, string | undefined> = {}
): [string, string][] {
  const fields: Record<string, string | undefined> = {
    username: quote('alice'),
    realm: quote(target.realm),
    uri: quote(target.path),
    algorithm: 'SHA-256',
    nonce: quote(nonce),
    nc: '00000001',
    cnonce: quote('0a4f113b'),
    qop: 'auth',
    response: quote('0'.repeat(64)),
    opaque: opaque === undefined ? undefined : quote(opaque),
    ...overrides,
  }
  return Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined)
}

const header = (pairs: [string, string][]) =>
  `Digest ${pairs.map(([k, v]) => `${k}=${v}`).join(', ')}`

/** A nonce no gate minted: random base64url of plausible lengths. */
const randomNonce = b64u(1, 120)

export function hugeCases(seed: number, count: number, target: Target): Generated[] {
  const sizes = fc.constantFrom(600, 4096, 8193, 16_384, 65_536, 262_144)
  const oneHuge = fc
    .tuple(
      fc.constantFrom('username', 'realm', 'nonce', 'uri', 'response', 'cnonce', 'opaque', 'x'),
      sizes,
      fc.constantFrom('a', '\\', '"', '\xe4', ',', ' ', '0'),
      fc.boolean(),
      randomNonce
    )
    .map(([name, size, fill, quoted, nonce]) => {
      const raw = fill.repeat(size)
      const value = quoted ? quote(raw) : raw
      const pairs = shape(target, nonce, undefined, { [name]: value })
      if (!pairs.some(([k]) => k === name)) pairs.push([name, value])
      return header(pairs)
    })
  const many = fc
    .tuple(fc.integer({ min: 33, max: 5000 }), fc.boolean(), randomNonce)
    .map(([n, same, nonce]) => {
      const extra: [string, string][] = Array.from({ length: n }, (_, i) => [
        same ? 'username' : `x${i}`,
        quote('v'),
      ])
      return header([...shape(target, nonce, undefined), ...extra])
    })
  const nested = fc
    .tuple(sizes, fc.constantFrom('\\"', '\\\\', '"",', ',,', '= '))
    .map(([size, unit]) => `Digest username="${unit.repeat(size / unit.length)}"`)
  return sample(
    fc.oneof({ weight: 5, arbitrary: oneHuge }, { weight: 2, arbitrary: many }, nested),
    seed,
    count
  ).map((value) => ({ category: 'huge', value }))
}

export function byteCases(seed: number, count: number, target: Target): Generated[] {
  const inQuoted = fc
    .tuple(
      fc.constantFrom('username', 'realm', 'uri', 'cnonce', 'nonce', 'opaque', 'response'),
      badUtf8,
      randomNonce
    )
    .map(([name, bad, nonce]) => header(shape(target, nonce, undefined, { [name]: quote(bad) })))
  const bare = fc
    .tuple(fc.constantFrom('username', 'algorithm', 'qop', 'nc', 'userhash'), badUtf8, randomNonce)
    .map(([name, bad, nonce]) =>
      header(shape(target, nonce, undefined, { [name]: bad.replace(/[\s,"=]/g, '') || '\xff' }))
    )
  const extValue = fc
    .tuple(
      fc.constantFrom(
        "UTF-8''%FF%FE",
        "UTF-8''%C3%28",
        "UTF-8''%ED%A0%80",
        "UTF-8''%C0%AF",
        "UTF-8''%",
        "UTF-8''%G1",
        "UTF-8''J%C3%A4s%C3%B8n\xff",
        "ISO-8859-1''J%E4s%F8n",
        "KOI8-R''%F0",
        "''alice",
        'UTF-8alice',
        "UTF-8'en'%E2%82%AC",
        "UTF-8''\xc3\xa4"
      ),
      fc.boolean(),
      randomNonce
    )
    .map(([ext, alsoPlain, nonce]) =>
      header(
        shape(target, nonce, undefined, {
          username: alsoPlain ? quote('alice') : undefined,
          'username*': ext,
        })
      )
    )
  const scheme8 = badUtf8.map((bad) => `Digest${bad} username="alice"`)
  return sample(
    fc.oneof(
      { weight: 4, arbitrary: inQuoted },
      { weight: 2, arbitrary: bare },
      { weight: 2, arbitrary: extValue },
      { weight: 1, arbitrary: scheme8 }
    ),
    seed,
    count
  ).map((value) => ({ category: 'bytes', value }))
}

// --- forged nonces and opaques ------------------------------------------------------------------

const fromB64u = (text: string) => Buffer.from(text, 'base64url')
const toB64u = (bytes: Buffer) => bytes.toString('base64url')

/** A genuine token changed so that its MAC no longer holds (always different bytes). */
const mutated = (token: string) =>
  fc
    .tuple(
      fc.constantFrom('flip', 'truncate', 'extend', 'keyid', 'time', 'server'),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      fc.uint8Array({ minLength: 1, maxLength: 16 })
    )
    .map(([how, at, delta, tail]) => {
      const bytes = fromB64u(token)
      const index = at % bytes.length
      switch (how) {
        case 'flip':
          bytes[index] = (bytes[index] as number) ^ (1 << (delta % 8))
          return toB64u(bytes)
        case 'truncate':
          return toB64u(bytes.subarray(0, index))
        case 'extend':
          return toB64u(Buffer.concat([bytes, Buffer.from(tail)]))
        case 'keyid':
          bytes[1] = ((bytes[1] as number) + delta) & 0xff
          return toB64u(bytes)
        case 'time':
          bytes[2 + (index % 4)] = ((bytes[2 + (index % 4)] as number) + delta) & 0xff
          return toB64u(bytes)
        default:
          // The server identity of a nonce (bytes 7…), same length, one letter changed.
          bytes[7] = ((bytes[7] as number) + delta) & 0xff
          return toB64u(bytes)
      }
    })

export function forgedCases(
  seed: number,
  count: number,
  target: Target,
  genuine: Genuine[],
  forgeries: Forgeries
): Generated[] {
  const challenge = fc.constantFrom(...genuine)
  const username = fc.oneof(
    fc.constantFrom(quote('alice'), quote('bob'), quote('root'), quote('')),
    latin1Text(20).map(quote)
  )
  const response = fc.oneof(hex(32, 32), hex(64, 64)).map(quote)
  const common = fc.record({ username, response, nc: hex(8, 8), cnonce: b64u(1, 40).map(quote) })

  const forgedNonce = fc.oneof(
    randomNonce,
    challenge.chain((g) => mutated(g.nonce)),
    fc.constantFrom(...forgeries.mintedElsewhere)
  )
  const forgedOpaque = fc.oneof(
    b64u(1, 60),
    challenge.chain((g) => mutated(g.opaque))
  )
  /** Opaque sent along with a forged nonce: none, genuine, or forged. */
  const anyOpaque = fc.oneof(
    fc.constant(undefined),
    challenge.map((g) => g.opaque),
    forgedOpaque
  )

  const kinds = fc.oneof(
    // Forged nonce, whatever the opaque.
    fc
      .tuple(forgedNonce, anyOpaque, common)
      .map(([nonce, opaque, c]) => shape(target, nonce, opaque, c)),
    // Genuine nonce, forged opaque (or the opaque of another challenge).
    fc
      .tuple(
        challenge,
        fc.oneof(
          forgedOpaque,
          challenge.map((g) => g.opaque)
        ),
        common
      )
      .filter(([g, opaque]) => g.opaque !== opaque)
      .map(([g, opaque, c]) => shape(target, g.nonce, opaque, c)),
    // Genuine nonce and opaque, but a wrong realm.
    fc
      .tuple(
        challenge,
        fc.oneof(
          fc.constantFrom('', 'Digest-Gate', `${target.realm} `, `${target.realm}\xff`, 'other'),
          latin1Text(30)
        ),
        common
      )
      .filter(([, realm]) => realm !== target.realm)
      .map(([g, realm, c]) => shape(target, g.nonce, g.opaque, { ...c, realm: quote(realm) })),
    // Genuine nonce and opaque, an algorithm, qop or userhash the gate did not offer.
    fc
      .tuple(
        challenge,
        fc.oneof(
          fc.constantFrom(...target.notOffered).map((algorithm) => ({ algorithm })),
          fc.constant({ qop: 'auth-int' }),
          fc.constant({ qop: undefined, nc: undefined, cnonce: undefined }),
          fc.constant({ userhash: 'true' })
        ),
        common
      )
      .map(([g, change, c]) => shape(target, g.nonce, g.opaque, { ...c, ...change })),
    // Genuine nonce and opaque, a uri that is not the request target.
    fc
      .tuple(
        challenge,
        fc.constantFrom('/', '/private/other', `${target.path}?x=1`, '*', 'http://evil/'),
        common
      )
      .map(([g, uri, c]) => shape(target, g.nonce, g.opaque, { ...c, uri: quote(uri) }))
  )
  return sample(kinds, seed, count).map((pairs) => ({ category: 'forged', value: header(pairs) }))
}

/**
 * Genuine nonce and opaque, everything offered, hostile values elsewhere: these may reach the
 * authority (and must be refused there or before), never answered with a 5xx or a 2xx.
 */
export function detailCases(
  seed: number,
  count: number,
  target: Target,
  genuine: Genuine[]
): Generated[] {
  const hostile = fc.oneof(
    fc.constantFrom('1', '01', '0000001', 'ffffffff', 'FFFFFFFF', '0', '00000000').map((nc) => ({
      nc,
    })),
    fc
      .constantFrom('', 'x'.repeat(256), '\xe4\xff', 'a,b', 'a"b')
      .map((c) => ({ cnonce: quote(c) })),
    fc
      .oneof(
        fc.constantFrom('', 'nobody', 'alice ', 'ALICE', 'x'.repeat(512), 'j\xe4s\xf8n'),
        latin1Text(40)
      )
      .map((u) => ({ username: quote(u) })),
    fc.constantFrom("UTF-8''%C3%A4", "UTF-8''alice").map((u) => ({
      username: undefined,
      'username*': u,
    })),
    fc.oneof(hex(1, 31), hex(33, 63), hex(65, 128)).map((r) => ({ response: quote(r) })),
    fc.constantFrom(...target.offered).map((algorithm) => ({ algorithm })),
    fc.constant({ userhash: 'false' })
  )
  const cases = fc
    .tuple(fc.constantFrom(...genuine), hostile, hex(64, 64))
    .map(([g, change, response]) =>
      header(shape(target, g.nonce, g.opaque, { response: quote(response), ...change }))
    )
  return sample(cases, seed, count).map((value) => ({ category: 'details', value }))
}

// --- raw requests -----------------------------------------------------------------------------

/** Whole requests with bytes node:http would refuse to write. */
export function rawRequests(
  seed: number,
  count: number,
  target: Target & { host: string; clientIp: string }
): { category: string; bytes: Buffer }[] {
  const head = (lines: readonly string[]) =>
    Buffer.from(
      [
        `GET ${target.path} HTTP/1.1`,
        `Host: ${target.host}`,
        `CF-Connecting-IP: ${target.clientIp}`,
        'Connection: close',
        ...lines,
        '',
        '',
      ].join('\r\n'),
      'latin1'
    )
  const control = fc
    .integer({ min: 0, max: 0x1f })
    .filter((c) => c !== 0x09)
    .map((c) => String.fromCharCode(c))
  const withControl = fc
    .tuple(latin1Text(30), fc.oneof(control, fc.constant('\x7f')), latin1Text(30))
    .map(([a, c, b]) => [`Authorization: Digest username="${a}${c}${b}"`])
  const bareBreak = fc
    .tuple(fc.constantFrom('\r', '\n', '\r\r', '\n\r'), latin1Text(30))
    .map(([br, rest]) => [`Authorization: Digest username="a"${br}${rest}`])
  const folded = fc
    .tuple(fc.constantFrom(' ', '\t'), latin1Text(30))
    .map(([ws, rest]) => [`Authorization: Digest username="a",`, `${ws}${rest}`])
  const injected = fc.constant([
    'Authorization: Digest username="alice"',
    'X-Auth-User: alice',
    'X-Auth-Groups: admin',
  ])
  const duplicate = fc
    .array(
      fc.oneof(
        latin1Text(40).map((t) => `Digest ${t}`),
        fc.constant('Digest username="alice", realm="x"')
      ),
      { minLength: 2, maxLength: 5 }
    )
    .map((values) => values.map((v) => `Authorization: ${v}`))
  const badLine = fc.constantFrom(
    ['Authorization : Digest username="a"'],
    ['Authorization:'],
    ['Authorization'],
    [': Digest'],
    ['Author\x00ization: Digest'],
    ['Authorization:\x00Digest username="a"'],
    [`Authorization: Digest username="${'a'.repeat(200_000)}"`],
    [`Authorization: Digest ${'x=1, '.repeat(20_000)}`]
  )
  const arb = fc.oneof(
    { weight: 4, arbitrary: withControl },
    { weight: 2, arbitrary: bareBreak },
    { weight: 1, arbitrary: folded },
    { weight: 1, arbitrary: injected },
    { weight: 2, arbitrary: duplicate },
    { weight: 1, arbitrary: badLine }
  )
  return sample(arb, seed, count).map((lines) => ({ category: 'raw', bytes: head(lines) }))
}
