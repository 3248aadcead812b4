/** Header grammar: RFC texts verbatim, real client shapes, and property tests. */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DigestError } from '../../src/digest/errors.ts'
import {
  formatAuthenticationInfo,
  formatAuthorization,
  formatChallenge,
  MAX_DIRECTIVES,
  MAX_HEADER_LENGTH,
  parseAuthenticationInfo,
  parseAuthorization,
  parseChallenges,
} from '../../src/digest/header.ts'
import type {
  AlgorithmName,
  AuthenticationInfo,
  DigestChallenge,
  DigestCredentials,
} from '../../src/digest/types.ts'

/**
 * Header field texts as printed in the RFCs, which fold them over several lines. A recipient
 * replaces each fold (CRLF + whitespace) with one SP (RFC 9112 §5.2), as done here. Values the
 * RFC had to wrap inside a quoted-string are joined back (the wrap is typesetting).
 */
function unfold(printed: string): string {
  return printed
    .trim()
    .replace(/\n[ \t]+/g, ' ')
    .replace(/^[A-Za-z-]+:\s*/, '')
}

// RFC 7616 §3.9.1
const RFC7616_CHALLENGE_SHA256 = unfold(`
   WWW-Authenticate: Digest
       realm="http-auth@example.org",
       qop="auth, auth-int",
       algorithm=SHA-256,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`)
const RFC7616_CHALLENGE_MD5 = unfold(`
   WWW-Authenticate: Digest
       realm="http-auth@example.org",
       qop="auth, auth-int",
       algorithm=MD5,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`)
const RFC7616_AUTH_MD5 = unfold(`
   Authorization:Digest username="Mufasa",
       realm="http-auth@example.org",
       uri="/dir/index.html",
       algorithm=MD5,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       nc=00000001,
       cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
       qop=auth,
       response="8ca523f5e9506fed4657c9700eebdbec",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`)
const RFC7616_AUTH_SHA256 = unfold(`
   Authorization: Digest username="Mufasa",
       realm="http-auth@example.org",
       uri="/dir/index.html",
       algorithm=SHA-256,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       nc=00000001,
       cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
       qop=auth,
       response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`)

// RFC 7616 §3.9.2 (values as printed; erratum 4897 corrects the two hashes, not the grammar)
const RFC7616_CHALLENGE_512 = unfold(`
   WWW-Authenticate: Digest
       realm="api@example.org",
       qop="auth",
       algorithm=SHA-512-256,
       nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK",
       opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS",
       charset=UTF-8,
       userhash=true`)
const RFC7616_AUTH_USERHASH = unfold(`
   Authorization: Digest
       username="488869477bf257147b804c45308cd62ac4e25eb717b12b298c79e62dcea254ec",
       realm="api@example.org",
       uri="/doe.json",
       algorithm=SHA-512-256,
       nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK",
       nc=00000001,
       cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
       qop=auth,
       response="ae66e67d6b427bd3f120414a82e4acff38e8ecd9101d6c861229025f607a79dd",
       opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS",
       userhash=true`)
const RFC7616_AUTH_USERNAME_STAR = unfold(`
   Authorization: Digest
       username*=UTF-8''J%C3%A4s%C3%B8n%20Doe,
       realm="api@example.org",
       uri="/doe.json",
       algorithm=SHA-512-256,
       nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK",
       nc=00000001,
       cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
       qop=auth,
       response="ae66e67d6b427bd3f120414a82e4acff38e8ecd9101d6c861229025f607a79dd",
       opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS",
       userhash=false`)

// RFC 2617 §3.5
const RFC2617_CHALLENGE = unfold(`
         WWW-Authenticate: Digest
                 realm="testrealm@host.com",
                 qop="auth,auth-int",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41"`)
const RFC2617_AUTH = unfold(`
         Authorization: Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41"`)

const NONCE1 = '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v'
const OPAQUE1 = 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS'
const CNONCE1 = 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ'

function digestError(fn: () => unknown): DigestError {
  try {
    fn()
  } catch (e) {
    if (e instanceof DigestError) return e
    throw e
  }
  throw new Error('expected a DigestError')
}

describe('RFC 7616 §3.9.1 (SHA-256 and MD5)', () => {
  const expected = (algorithm: AlgorithmName): DigestChallenge => ({
    realm: 'http-auth@example.org',
    qop: ['auth', 'auth-int'],
    algorithm,
    nonce: NONCE1,
    opaque: OPAQUE1,
  })

  it('parses the two challenges as two header fields and as one combined value', () => {
    const both = [expected('SHA-256'), expected('MD5')]
    expect(parseChallenges([RFC7616_CHALLENGE_SHA256, RFC7616_CHALLENGE_MD5])).toEqual(both)
    expect(parseChallenges(`${RFC7616_CHALLENGE_SHA256}, ${RFC7616_CHALLENGE_MD5}`)).toEqual(both)
  })

  it('formats a challenge in the RFC layout', () => {
    expect(formatChallenge(expected('SHA-256'))).toBe(RFC7616_CHALLENGE_SHA256)
  })

  it('parses both Authorization headers', () => {
    const common = {
      username: 'Mufasa',
      userhash: false,
      realm: 'http-auth@example.org',
      uri: '/dir/index.html',
      nonce: NONCE1,
      nc: 1,
      ncRaw: '00000001',
      cnonce: CNONCE1,
      qop: 'auth',
      opaque: OPAQUE1,
    }
    expect(parseAuthorization(RFC7616_AUTH_MD5)).toEqual({
      ...common,
      algorithm: 'MD5',
      algorithmRaw: 'MD5',
      response: '8ca523f5e9506fed4657c9700eebdbec',
    })
    expect(parseAuthorization(RFC7616_AUTH_SHA256)).toEqual({
      ...common,
      algorithm: 'SHA-256',
      algorithmRaw: 'SHA-256',
      response: '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
    })
  })

  it('formats credentials exactly as the RFC prints them', () => {
    const parsed = parseAuthorization(RFC7616_AUTH_SHA256)
    expect(formatAuthorization(parsed)).toBe(RFC7616_AUTH_SHA256)
  })
})

describe('RFC 7616 §3.9.2 (SHA-512-256, charset, userhash)', () => {
  it('parses the challenge', () => {
    expect(parseChallenges(RFC7616_CHALLENGE_512)).toEqual([
      {
        realm: 'api@example.org',
        qop: ['auth'],
        algorithm: 'SHA-512-256',
        nonce: '5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK',
        opaque: 'HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS',
        charset: 'UTF-8',
        userhash: true,
      },
    ])
    expect(formatChallenge(parseChallenges(RFC7616_CHALLENGE_512)[0] as DigestChallenge)).toBe(
      RFC7616_CHALLENGE_512
    )
  })

  it('parses the userhash form', () => {
    const c = parseAuthorization(RFC7616_AUTH_USERHASH)
    expect(c.userhash).toBe(true)
    expect(c.username).toBe('488869477bf257147b804c45308cd62ac4e25eb717b12b298c79e62dcea254ec')
    expect(c.algorithm).toBe('SHA-512-256')
    expect(formatAuthorization(c)).toBe(RFC7616_AUTH_USERHASH)
  })

  it('parses the username* form (RFC 8187)', () => {
    const c = parseAuthorization(RFC7616_AUTH_USERNAME_STAR)
    expect(c.userhash).toBe(false)
    expect(c.username).toBe('J\u00e4s\u00f8n Doe')
    // We write userhash only when true; the rest is the RFC text.
    expect(formatAuthorization(c)).toBe(RFC7616_AUTH_USERNAME_STAR.replace(', userhash=false', ''))
  })
})

describe('RFC 2617 §3.5', () => {
  it('parses the challenge (qop list without a space) and the credentials', () => {
    expect(parseChallenges(RFC2617_CHALLENGE)).toEqual([
      {
        realm: 'testrealm@host.com',
        qop: ['auth', 'auth-int'],
        nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
        opaque: '5ccc069c403ebaf9f0171e9517f40e41',
      },
    ])
    const c = parseAuthorization(RFC2617_AUTH)
    expect(c.algorithm).toBeUndefined()
    expect(c.response).toBe('6629fae49393a05397450978507c4ef1')
    expect(c.cnonce).toBe('0a4f113b')
  })
})

describe('real client header shapes', () => {
  const R = 'response="6629fae49393a05397450978507c4ef1"'

  it('curl: cnonce with base64 "+/=", algorithm and userhash bare', () => {
    const c = parseAuthorization(
      `Digest username="4238f3a16167373febb9bc4d43db9cc4", realm="r", nonce="n", uri="/a?b=c", cnonce="YjJjYzlhNzQ1ZDFmZTQ0Nzk3YmM+/w==", nc=00000002, qop=auth, ${R}, opaque="o", algorithm=MD5, userhash=true`
    )
    expect(c).toMatchObject({
      userhash: true,
      uri: '/a?b=c',
      cnonce: 'YjJjYzlhNzQ1ZDFmZTQ0Nzk3YmM+/w==',
      nc: 2,
      algorithm: 'MD5',
    })
  })

  it('python-requests: qop and algorithm quoted, nc bare; algorithm case kept in algorithmRaw', () => {
    const c = parseAuthorization(
      `Digest username="Mufasa", realm="r", nonce="n", uri="/p", ${R}, opaque="o", algorithm="MD5-SESS", qop="auth", nc=00000003, cnonce="0123456789abcdef"`
    )
    expect(c).toMatchObject({ algorithm: 'MD5-sess', algorithmRaw: 'MD5-SESS', qop: 'auth', nc: 3 })
  })

  it('wget: algorithm quoted; and its RFC 2069 form without qop', () => {
    const c = parseAuthorization(
      `Digest username="u", realm="r", nonce="n", uri="/", ${R}, opaque="o", qop=auth, nc=00000001, cnonce="1a2b3c4d", algorithm="MD5"`
    )
    expect(c.algorithm).toBe('MD5')
    const legacy = parseAuthorization(`Digest username="u", realm="r", nonce="n", uri="/", ${R}`)
    expect(legacy.qop).toBeUndefined()
    expect(legacy.nc).toBeUndefined()
  })

  it('digest-fetch: no spaces after commas; nc and cnonce even without qop', () => {
    const c = parseAuthorization(
      `Digest username="u",realm="r",nonce="n",uri="/p?q=1",opaque="o",qop=auth,algorithm=MD5,${R},nc=00000009,cnonce="0123456789abcdef0123456789abcdef"`
    )
    expect(c).toMatchObject({ uri: '/p?q=1', nc: 9, ncRaw: '00000009', qop: 'auth' })
    const noQop = parseAuthorization(
      `Digest username="u",realm="r",nonce="n",uri="/",algorithm=MD5,${R},nc=00000004,cnonce="ab"`
    )
    expect(noQop).toMatchObject({ nc: 4, cnonce: 'ab' })
    expect(noQop.qop).toBeUndefined()
  })

  it('@mhoc/axios-digest-auth: quoted nc, quoted qop and algorithm, no opaque', () => {
    const c = parseAuthorization(
      `Digest username="u",realm="r",nonce="n",uri="/md5x/ax",qop="auth",algorithm="MD5",${R},nc="00000002",cnonce="${'ab'.repeat(24)}"`
    )
    expect(c).toMatchObject({ nc: 2, ncRaw: '00000002', qop: 'auth', algorithm: 'MD5' })
    expect(c.opaque).toBeUndefined()
  })

  it('Chromium: algorithm before response, userhash=true', () => {
    const c = parseAuthorization(
      `Digest username="a947aad205e80e429958a387394944c6b496301e79f89d35a4cc23b6ee12b5b6", realm="http-auth@example.org", nonce="n", uri="/dir/index.html", algorithm=SHA-256-sess, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="o", qop=auth, nc=00000002, cnonce="0123456789abcdef", userhash=true`
    )
    expect(c).toMatchObject({ algorithm: 'SHA-256-sess', userhash: true, nc: 2 })
  })

  it('raw UTF-8 username (Chromium, Firefox, curl) seen as Latin-1 code points is decoded', () => {
    // 4A C3A4 73 C3B8 6E 20 44 6F 65 (RFC 7616 §3.9.2), one code point per byte
    const bytes = 'J\u00c3\u00a4s\u00c3\u00b8n Doe'
    const c = parseAuthorization(`Digest username="${bytes}", realm="r", nonce="n", uri="/", ${R}`)
    expect(c.username).toBe('J\u00e4s\u00f8n Doe')
  })

  it('Latin-1 username (python-requests) stays Latin-1', () => {
    const c = parseAuthorization(
      `Digest username="J\u00e4s\u00f8n", realm="r", nonce="n", uri="/", ${R}`
    )
    expect(c.username).toBe('J\u00e4s\u00f8n')
  })

  it('already-decoded text (workerd decodes UTF-8 header bytes) is kept', () => {
    const c = parseAuthorization(
      `Digest username="\u0416\u0435\u043d\u044f \u00e4", realm="r", nonce="n", uri="/", ${R}`
    )
    expect(c.username).toBe('\u0416\u0435\u043d\u044f \u00e4')
  })

  it('upper-case response hex is normalised to lower case', () => {
    const c = parseAuthorization(
      'Digest username="u", realm="r", nonce="n", uri="/", response="8CA523F5E9506FED4657C9700EEBDBEC"'
    )
    expect(c.response).toBe('8ca523f5e9506fed4657c9700eebdbec')
  })

  it('tolerates case-insensitive names, BWS around "=", empty list elements', () => {
    const c = parseAuthorization(
      `digest , USERNAME = "u" ,, Realm= "r",nonce ="n", uri="/",\t${R},`
    )
    expect(c).toMatchObject({ username: 'u', realm: 'r', nonce: 'n' })
  })

  it('unescapes quoted-pairs', () => {
    const c = parseAuthorization(
      `Digest username="a\\"b\\\\c\\d", realm="x, y=z", nonce="n", uri="/", ${R}`
    )
    expect(c.username).toBe('a"b\\cd')
    expect(c.realm).toBe('x, y=z')
  })
})

describe('Authorization errors', () => {
  const ok = `Digest username="u", realm="r", nonce="n", uri="/", response="abcd"`
  const cases: [string, string, string, string?][] = [
    ['not Digest', 'Basic dTpw', 'not_digest'],
    ['empty', '', 'syntax'],
    ['Digest token68', 'Digest abc==', 'syntax'],
    ['duplicate', `${ok}, realm="r2"`, 'duplicate_directive', 'realm'],
    ['duplicate, other case', `${ok}, URI="/x"`, 'duplicate_directive', 'uri'],
    [
      'missing realm',
      'Digest username="u", nonce="n", uri="/", response="ab"',
      'missing_directive',
      'realm',
    ],
    [
      'missing response',
      'Digest username="u", realm="r", nonce="n", uri="/"',
      'missing_directive',
      'response',
    ],
    [
      'missing username',
      'Digest realm="r", nonce="n", uri="/", response="ab"',
      'missing_directive',
      'username',
    ],
    ['qop without nc', `${ok}, qop=auth, cnonce="c"`, 'missing_directive', 'nc'],
    ['qop without cnonce', `${ok}, qop=auth, nc=00000001`, 'missing_directive', 'cnonce'],
    ['unknown qop', `${ok}, qop=auth-conf, nc=1, cnonce="c"`, 'invalid_directive', 'qop'],
    ['unknown algorithm', `${ok}, algorithm=SHA-1`, 'invalid_directive', 'algorithm'],
    ['nc = 0', `${ok}, qop=auth, nc=00000000, cnonce="c"`, 'invalid_directive', 'nc'],
    ['nc 9 digits', `${ok}, qop=auth, nc=000000001, cnonce="c"`, 'invalid_directive', 'nc'],
    ['nc not hex', `${ok}, qop=auth, nc=0000000g, cnonce="c"`, 'invalid_directive', 'nc'],
    [
      'response not hex',
      'Digest username="u", realm="r", nonce="n", uri="/", response="xyz"',
      'invalid_directive',
      'response',
    ],
    ['bad userhash', `${ok}, userhash=yes`, 'invalid_directive', 'userhash'],
    ['username and username*', `${ok}, username*=UTF-8''u`, 'duplicate_directive', 'username*'],
    [
      'username* with userhash',
      `Digest username*=UTF-8''u, realm="r", nonce="n", uri="/", response="ab", userhash=true`,
      'invalid_directive',
      'username*',
    ],
    [
      'username* bad charset',
      `Digest username*=KOI8-R''u, realm="r", nonce="n", uri="/", response="ab"`,
      'invalid_directive',
      'username*',
    ],
    [
      'username* bad escape',
      `Digest username*=UTF-8''%G1, realm="r", nonce="n", uri="/", response="ab"`,
      'invalid_directive',
      'username*',
    ],
    [
      'username* invalid UTF-8',
      `Digest username*=UTF-8''%C3, realm="r", nonce="n", uri="/", response="ab"`,
      'invalid_directive',
      'username*',
    ],
    ['unterminated quote', 'Digest username="u, realm="r', 'syntax'],
    ['missing comma', 'Digest username="u" realm="r"', 'syntax'],
    ['stray after value', 'Digest username=u"x", realm="r"', 'syntax'],
    ['empty value', 'Digest username=, realm="r"', 'syntax'],
    ['no "="', 'Digest username "u"', 'syntax'],
    ['control char', 'Digest username="a\u0001b", realm="r"', 'syntax'],
    ['CR LF', 'Digest username="a"\r\n, realm="r"', 'syntax'],
    ['second scheme', `${ok}, Basic abc`, 'syntax'],
    ['too long', `${ok}, x="${'a'.repeat(MAX_HEADER_LENGTH)}"`, 'too_long'],
    [
      'too long value',
      `Digest username="${'a'.repeat(600)}", realm="r", nonce="n", uri="/", response="ab"`,
      'invalid_directive',
      'username',
    ],
  ]
  it.each(cases)('%s', (_name, header, code, directive) => {
    const e = digestError(() => parseAuthorization(header))
    expect(e.code).toBe(code)
    if (directive !== undefined) expect(e.directive).toBe(directive)
  })

  it('refuses more than MAX_DIRECTIVES directives', () => {
    const extra = Array.from({ length: MAX_DIRECTIVES }, (_, i) => `x${i}=1`).join(', ')
    expect(digestError(() => parseAuthorization(`${ok}, ${extra}`)).code).toBe(
      'too_many_directives'
    )
    const fits = Array.from({ length: MAX_DIRECTIVES - 5 }, (_, i) => `x${i}=1`).join(', ')
    expect(parseAuthorization(`${ok}, ${fits}`).username).toBe('u')
  })
})

describe('challenge lists', () => {
  it('skips other schemes, token68 included, and finds every Digest challenge', () => {
    const header =
      'Basic realm="simple", Bearer abc.def==, Digest realm="a", nonce="1", ' +
      'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Digest realm="b", nonce="2", ' +
      'algorithm=sha-256, Negotiate'
    expect(parseChallenges(header)).toEqual([
      { realm: 'a', nonce: '1' },
      { realm: 'b', nonce: '2', algorithm: 'SHA-256' },
    ])
  })

  it('skips challenges with an unknown algorithm or no usable qop, without throwing', () => {
    const header = [
      'Digest realm="a", nonce="1", algorithm=SHA-1',
      'Digest realm="b", nonce="2", qop="auth-conf"',
      'Digest realm="c", nonce="3", qop="auth-conf, auth", algorithm=MD5-sess',
    ]
    expect(parseChallenges(header)).toEqual([
      { realm: 'c', nonce: '3', qop: ['auth'], algorithm: 'MD5-sess' },
    ])
  })

  it('reads stale, domain, charset, userhash; tolerates unquoted qop', () => {
    const [c] = parseChallenges(
      'Digest realm="r", nonce="n", stale=TRUE, domain="/a  https://x.test/b\t/c", charset="utf-8", userhash="true", qop=auth'
    )
    expect(c).toEqual({
      realm: 'r',
      nonce: 'n',
      stale: true,
      domain: ['/a', 'https://x.test/b', '/c'],
      charset: 'UTF-8',
      userhash: true,
      qop: ['auth'],
    })
    const [d] = parseChallenges('Digest realm="r", nonce="n", stale=no, charset=latin1')
    expect(d).toEqual({ realm: 'r', nonce: 'n', stale: false })
  })

  it('throws on a malformed Digest challenge', () => {
    expect(digestError(() => parseChallenges('Digest realm="r"')).code).toBe('missing_directive')
    expect(digestError(() => parseChallenges('Digest realm="r", realm="s", nonce="n"')).code).toBe(
      'duplicate_directive'
    )
    expect(digestError(() => parseChallenges('Digest realm="r, nonce="n"')).code).toBe('syntax')
  })

  it('returns nothing for non-Digest headers', () => {
    expect(parseChallenges(['Basic realm="x"', 'Bearer', ''])).toEqual([])
  })
})

describe('Authentication-Info', () => {
  it('parses and formats (RFC 7616 §3.5 shape)', () => {
    const text =
      'nextnonce="abc", qop=auth, rspauth="8CA523F5E9506FED4657C9700EEBDBEC", cnonce="f2/wE4", nc=00000001'
    const info = parseAuthenticationInfo(text)
    expect(info).toEqual({
      nextnonce: 'abc',
      qop: 'auth',
      rspauth: '8ca523f5e9506fed4657c9700eebdbec',
      cnonce: 'f2/wE4',
      nc: '00000001',
    })
    expect(formatAuthenticationInfo(info)).toBe(text.replace(/8CA5.*EC"/, (m) => m.toLowerCase()))
  })

  it('refuses a malformed one', () => {
    expect(digestError(() => parseAuthenticationInfo('rspauth="zz"')).code).toBe(
      'invalid_directive'
    )
    expect(digestError(() => parseAuthenticationInfo('qop=auth, qop=auth')).code).toBe(
      'duplicate_directive'
    )
    expect(digestError(() => parseAuthenticationInfo('nc=0')).code).toBe('invalid_directive')
    expect(digestError(() => parseAuthenticationInfo('Digest qop=auth')).code).toBe('syntax')
  })
})

describe('formatting', () => {
  it('escapes quotes and backslashes, writes username* for non-ASCII names', () => {
    const header = formatAuthorization({
      username: 'J\u00e4s\u00f8n "Doe"',
      userhash: false,
      realm: 'a "quoted" \\ realm',
      nonce: 'n',
      uri: '/',
      response: 'ab',
    })
    expect(header).toBe(
      `Digest username*=UTF-8''J%C3%A4s%C3%B8n%20%22Doe%22, realm="a \\"quoted\\" \\\\ realm", uri="/", nonce="n", response="ab"`
    )
  })

  it('refuses control characters that a header cannot carry', () => {
    const e = digestError(() => formatChallenge({ realm: 'a\r\nSet-Cookie: x', nonce: 'n' }))
    expect(e).toMatchObject({ code: 'invalid_directive', directive: 'realm' })
  })
})

// ---------------------------------------------------------------------------------------------
// Property tests

/**
 * The one documented ambiguity of decodeHeaderText: text made only of code points <= 0xFF that is
 * also valid UTF-8 when read as bytes reads back as the decoded text.
 */
function latin1LooksLikeUtf8(s: string): boolean {
  let high = false
  for (const ch of s) {
    const c = ch.codePointAt(0) as number
    if (c > 0xff) return false
    if (c >= 0x80) high = true
  }
  if (!high) return false
  try {
    new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(
      Uint8Array.from(s, (ch) => ch.charCodeAt(0))
    )
    return true
  } catch {
    return false
  }
}

const interesting = fc.constantFrom(
  '"',
  '\\',
  ',',
  '=',
  ' ',
  '\t',
  "'",
  '%',
  '*',
  '\u00e4',
  '\u00c3',
  '\u00a4',
  '\u20ac',
  '\u{1f600}',
  'Digest ',
  'realm='
)
const anyChar = fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })
/** Any text a quoted-string can carry: no CTLs (except HTAB), no DEL. */
const headerText = (maxLength: number) =>
  fc
    .string({ unit: fc.oneof(interesting, anyChar), maxLength })
    // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
    .map((s) => s.replace(/[\u0000-\u0008\u000a-\u001f\u007f]/g, ''))
    .filter((s) => s.length <= maxLength && !latin1LooksLikeUtf8(s))
const lowerHex = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: min, maxLength: max })
const algorithm = fc.constantFrom<AlgorithmName>(
  'MD5',
  'MD5-sess',
  'SHA-256',
  'SHA-256-sess',
  'SHA-512-256',
  'SHA-512-256-sess'
)
const ncValue = fc.integer({ min: 1, max: 0xffffffff })

const challengeArb: fc.Arbitrary<DigestChallenge> = fc.record(
  {
    realm: headerText(100),
    nonce: headerText(100),
    opaque: headerText(100),
    algorithm,
    qop: fc.subarray<'auth' | 'auth-int'>(['auth', 'auth-int'], { minLength: 1 }),
    stale: fc.boolean(),
    domain: fc.array(
      headerText(30)
        .map((s) => s.replace(/[ \t]/g, ''))
        .filter((s) => s !== '' && !latin1LooksLikeUtf8(s)),
      { minLength: 1, maxLength: 4 }
    ),
    charset: fc.constant<'UTF-8'>('UTF-8'),
    userhash: fc.boolean(),
  },
  { requiredKeys: ['realm', 'nonce'] }
)

const credentialsArb: fc.Arbitrary<DigestCredentials> = fc
  .record({
    userhash: fc.boolean(),
    // Control characters are refused in username* as in username (no spelling carries them).
    plainName: headerText(100),
    hashName: lowerHex(32, 64),
    realm: headerText(100),
    nonce: headerText(100),
    uri: headerText(200),
    response: lowerHex(1, 128),
    algorithm: fc.option(algorithm, { nil: undefined }),
    opaque: fc.option(headerText(100), { nil: undefined }),
    qop: fc.option(fc.constantFrom<'auth' | 'auth-int'>('auth', 'auth-int'), { nil: undefined }),
    nc: ncValue,
    ncDigits: fc.integer({ min: 1, max: 8 }),
    cnonce: headerText(100),
  })
  .map((r) => {
    const c: DigestCredentials = {
      username: r.userhash ? r.hashName : r.plainName,
      userhash: r.userhash,
      realm: r.realm,
      nonce: r.nonce,
      uri: r.uri,
      response: r.response,
    }
    if (r.algorithm !== undefined) {
      c.algorithm = r.algorithm
      c.algorithmRaw = r.algorithm
    }
    if (r.opaque !== undefined) c.opaque = r.opaque
    if (r.qop !== undefined) {
      const ncRaw = r.nc.toString(16).padStart(r.ncDigits, '0')
      c.qop = r.qop
      c.nc = Number.parseInt(ncRaw, 16)
      c.ncRaw = ncRaw
      c.cnonce = r.cnonce
    }
    return c
  })

const infoArb: fc.Arbitrary<AuthenticationInfo> = fc.record(
  {
    nextnonce: headerText(100),
    qop: fc.constantFrom<'auth' | 'auth-int'>('auth', 'auth-int'),
    rspauth: lowerHex(1, 128),
    cnonce: headerText(100),
    nc: ncValue.map((n) => n.toString(16).padStart(8, '0')),
  },
  { requiredKeys: [] }
)

describe('properties', () => {
  it('parseChallenges(formatChallenge(c)) round-trips, alone and in a list', () => {
    fc.assert(
      fc.property(challengeArb, challengeArb, (a, b) => {
        expect(parseChallenges(formatChallenge(a))).toEqual([a])
        const list = `Basic realm="x", ${formatChallenge(a)}, Bearer t0k3n==, ${formatChallenge(b)}`
        expect(parseChallenges(list)).toEqual([a, b])
      }),
      { numRuns: 2000 }
    )
  })

  it('parseAuthorization(formatAuthorization(c)) round-trips', () => {
    fc.assert(
      fc.property(credentialsArb, (c) => {
        expect(parseAuthorization(formatAuthorization(c))).toEqual(c)
      }),
      { numRuns: 2000 }
    )
  })

  it('parseAuthenticationInfo(formatAuthenticationInfo(i)) round-trips', () => {
    fc.assert(
      fc.property(infoArb, (info) => {
        expect(parseAuthenticationInfo(formatAuthenticationInfo(info))).toEqual(info)
      }),
      { numRuns: 2000 }
    )
  })

  const fragments = fc.constantFrom(
    'Digest',
    'Basic',
    ' ',
    '\t',
    ',',
    '=',
    '"',
    '\\',
    'username',
    'username*',
    "UTF-8''J%C3%A4",
    'realm',
    'nonce',
    'uri',
    'response',
    'abcdef01',
    'qop',
    'auth',
    'auth-int',
    'nc',
    '00000001',
    'cnonce',
    'algorithm',
    'SHA-256',
    'userhash',
    'true',
    'stale',
    'domain',
    'abc==',
    '\u00c3\u00a4',
    '\u00e4',
    '\u0000',
    '\uffff'
  )
  const garbage = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }).map((b) => String.fromCharCode(...b)),
    fc.array(fragments, { maxLength: 60 }).map((a) => a.join(''))
  )

  function onlyDigestErrors(fn: () => unknown): void {
    try {
      fn()
    } catch (e) {
      if (!(e instanceof DigestError)) throw e
    }
  }

  it('never throws anything but DigestError, on arbitrary text and bytes', () => {
    fc.assert(
      fc.property(garbage, (text) => {
        onlyDigestErrors(() => parseAuthorization(text))
        onlyDigestErrors(() => parseAuthorization(`Digest ${text}`))
        onlyDigestErrors(() => parseChallenges([text, `Digest ${text}`]))
        onlyDigestErrors(() => parseAuthenticationInfo(text))
      }),
      { numRuns: 5000 }
    )
  })

  it('whatever parseAuthorization accepts, it formats and re-reads identically', () => {
    const wellFormed = fc
      .record({
        names: fc.shuffledSubarray(
          ['username="u\\"x"', 'realm="r"', 'nonce="n"', 'uri="/a b"', 'response="AB12"'],
          { minLength: 5 }
        ),
        extra: fc.array(fragments, { maxLength: 12 }).map((a) => a.join('')),
      })
      .map(({ names, extra }) => `Digest ${names.join(', ')}, ${extra}`)
    fc.assert(
      fc.property(fc.oneof(wellFormed, garbage), (text) => {
        let parsed: DigestCredentials
        try {
          parsed = parseAuthorization(text)
        } catch (e) {
          if (e instanceof DigestError) return
          throw e
        }
        const values = [parsed.realm, parsed.nonce, parsed.uri, parsed.cnonce, parsed.opaque]
        fc.pre(!values.some((v) => v !== undefined && latin1LooksLikeUtf8(v)))
        const again = parseAuthorization(formatAuthorization(parsed))
        expect(again).toEqual({
          ...parsed,
          ...(parsed.algorithm ? { algorithmRaw: parsed.algorithm } : {}),
        })
      }),
      { numRuns: 3000 }
    )
  })
})
