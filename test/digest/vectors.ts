/**
 * Digest test vectors, verbatim from the RFCs, plus derived rows (values the RFCs imply but do not
 * print). Shared by the workerd and the plain-Node suites.
 */
import { describe, expect, it } from 'vitest'
import {
  baseHA1,
  computeResponse,
  computeResponseDigests,
  hashOf,
  userhash,
} from '../../src/digest/algorithms.ts'
import { hashHex, nobleHashHex } from '../../src/digest/hash.ts'
import type { AlgorithmName, HashName, Qop } from '../../src/digest/types.ts'

export interface ResponseVector {
  name: string
  algorithm: AlgorithmName
  username: string
  realm: string
  password: string
  /** Base H(username:realm:password), where the source prints it. */
  ha1?: string
  nonce: string
  nc?: string
  cnonce?: string
  qop?: Qop
  method: string
  uri: string
  response: string
}

const RFC2617 = {
  username: 'Mufasa',
  realm: 'testrealm@host.com',
  password: 'Circle Of Life',
  nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
  method: 'GET',
  uri: '/dir/index.html',
} as const

const RFC7616_1 = {
  username: 'Mufasa',
  realm: 'http-auth@example.org',
  password: 'Circle of Life', // erratum 4495: lower-case "of"
  nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
  nc: '00000001',
  cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  qop: 'auth',
  method: 'GET',
  uri: '/dir/index.html',
} as const

export const RFC7616_2 = {
  username: 'J\u00e4s\u00f8n Doe',
  realm: 'api@example.org',
  password: 'Secret, or not?',
  nonce: '5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK',
  nc: '00000001',
  cnonce: 'NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v',
  qop: 'auth',
  method: 'GET',
  uri: '/doe.json',
  /** As printed in RFC 7616 §3.9.2: SHA-512 truncated to 256 bits, not SHA-512/256. */
  printed: {
    userhash: '488869477bf257147b804c45308cd62ac4e25eb717b12b298c79e62dcea254ec',
    response: 'ae66e67d6b427bd3f120414a82e4acff38e8ecd9101d6c861229025f607a79dd',
  },
  /** With FIPS 180-4 SHA-512/256 (erratum 4897). */
  corrected: {
    userhash: '793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b',
    ha1: '2d3d9f12c9f3d30011259dc5fecee005ae24de40e3e1f61806d03e65f1e6024f',
    response: '3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5',
  },
} as const

export const RESPONSE_VECTORS: readonly ResponseVector[] = [
  {
    name: 'RFC 2617 §3.5',
    algorithm: 'MD5',
    ...RFC2617,
    ha1: '939e7578ed9e3c518a452acee763bce9',
    nc: '00000001',
    cnonce: '0a4f113b',
    qop: 'auth',
    response: '6629fae49393a05397450978507c4ef1',
  },
  {
    name: 'RFC 2617 §3.5 inputs in RFC 2069 form (derived)',
    algorithm: 'MD5',
    ...RFC2617,
    response: '670fd8c2df070c60b045671b8b24ff02',
  },
  {
    name: 'RFC 7616 §3.9.1 MD5',
    algorithm: 'MD5',
    ...RFC7616_1,
    ha1: '3d78807defe7de2157e2b0b6573a855f',
    response: '8ca523f5e9506fed4657c9700eebdbec',
  },
  {
    name: 'RFC 7616 §3.9.1 SHA-256',
    algorithm: 'SHA-256',
    ...RFC7616_1,
    ha1: '7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232',
    response: '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
  },
  {
    name: 'RFC 7616 §3.9.1 inputs, SHA-512-256 (derived)',
    algorithm: 'SHA-512-256',
    ...RFC7616_1,
    response: '430d05014cecc49cab6fbe03176d41a1da86cbfe24a16580e22aaad928d960d0',
  },
  {
    name: 'RFC 7616 §3.9.1 inputs, MD5-sess (derived)',
    algorithm: 'MD5-sess',
    ...RFC7616_1,
    ha1: '3d78807defe7de2157e2b0b6573a855f',
    response: 'e783283f46242139c486a698fec7211d',
  },
  {
    name: 'RFC 7616 §3.9.1 inputs, SHA-256-sess (derived)',
    algorithm: 'SHA-256-sess',
    ...RFC7616_1,
    ha1: '7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232',
    response: '2fd51b3a77ad75bad6afad6003e818d767133c46d9e2749e7f5232ae1ea3efd7',
  },
  {
    name: 'RFC 7616 §3.9.1 inputs, SHA-512-256-sess (derived)',
    algorithm: 'SHA-512-256-sess',
    ...RFC7616_1,
    response: '3f2a34f923c38b0fb26dce2fdfc2ce326c23cecf86fbb1444f3e51fbbc2cb92e',
  },
  {
    name: 'RFC 7616 §3.9.2 SHA-512-256 (erratum 4897)',
    algorithm: 'SHA-512-256',
    username: RFC7616_2.username,
    realm: RFC7616_2.realm,
    password: RFC7616_2.password,
    ha1: RFC7616_2.corrected.ha1,
    nonce: RFC7616_2.nonce,
    nc: RFC7616_2.nc,
    cnonce: RFC7616_2.cnonce,
    qop: RFC7616_2.qop,
    method: RFC7616_2.method,
    uri: RFC7616_2.uri,
    response: RFC7616_2.corrected.response,
  },
]

/** The -sess session keys H(HA1:nonce:cnonce) of the §3.9.1 inputs (derived). */
export const SESS_KEYS_7616_1: Partial<Record<HashName, string>> = {
  MD5: '2b3d906f52651c3136e1502b3d6f38ee',
  'SHA-256': 'bca21f4c7d7e8bf70d96361085370c7d219947abc1b8cd628f710917b89bed5b',
}
export const SESS_INPUTS_7616_1 = RFC7616_1

export const USERHASH_VECTORS: readonly {
  hash: HashName
  username: string
  realm: string
  userhash: string
}[] = [
  {
    hash: 'SHA-256',
    username: 'Mufasa',
    realm: 'http-auth@example.org',
    userhash: 'a947aad205e80e429958a387394944c6b496301e79f89d35a4cc23b6ee12b5b6',
  },
  {
    hash: 'MD5',
    username: 'Mufasa',
    realm: 'http-auth@example.org',
    userhash: '4238f3a16167373febb9bc4d43db9cc4',
  },
  {
    hash: 'SHA-512-256',
    username: RFC7616_2.username,
    realm: RFC7616_2.realm,
    userhash: RFC7616_2.corrected.userhash,
  },
]

/** "abc" under each hash (FIPS 180-4 / RFC 1321 examples). */
export const ABC_DIGESTS: Readonly<Record<HashName, string>> = {
  MD5: '900150983cd24fb0d6963f7d28e17f72',
  'SHA-256': 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  'SHA-512-256': '53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23',
}

/** First 256 bits of SHA-512, hex: the function RFC 7616 §3.9.2's printed values used. */
export async function sha512Truncated(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-512', new TextEncoder().encode(text))
  return [...new Uint8Array(digest)]
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('')
    .slice(0, 64)
}

/** The whole §3.9.2 computation with SHA-512 truncated, done by hand (no code under test). */
export async function rfc7616Example2WithTruncatedSha512(): Promise<{
  userhash: string
  response: string
}> {
  const v = RFC7616_2
  const ha1 = await sha512Truncated(`${v.username}:${v.realm}:${v.password}`)
  const ha2 = await sha512Truncated(`${v.method}:${v.uri}`)
  return {
    userhash: await sha512Truncated(`${v.username}:${v.realm}`),
    response: await sha512Truncated(`${ha1}:${v.nonce}:${v.nc}:${v.cnonce}:${v.qop}:${ha2}`),
  }
}

/** The vector suite; runs in whichever runtime imports it (workerd and plain Node). */
export function describeRfcVectors(): void {
  describe('RFC test vectors', () => {
    for (const v of RESPONSE_VECTORS) {
      it(`${v.name}: ${v.response}`, () => {
        const ha1 = baseHA1(hashOf(v.algorithm), v.username, v.realm, v.password)
        if (v.ha1 !== undefined) expect(ha1).toBe(v.ha1)
        const { username: _u, realm: _r, password: _p, name: _n, response, ...input } = v
        expect(computeResponse({ ...input, ha1 })).toBe(response)
        expect(computeResponseDigests({ ...input, ha1 }).response).toBe(response)
      })
    }

    it('derived -sess session keys H(HA1:nonce:cnonce)', () => {
      const v = SESS_INPUTS_7616_1
      for (const [hash, key] of Object.entries(SESS_KEYS_7616_1) as [HashName, string][]) {
        const ha1 = baseHA1(hash, v.username, v.realm, v.password)
        expect(hashHex(hash, `${ha1}:${v.nonce}:${v.cnonce}`)).toBe(key)
      }
    })

    for (const v of USERHASH_VECTORS) {
      it(`userhash ${v.hash} ${v.userhash}`, () => {
        expect(userhash(v.hash, v.username, v.realm)).toBe(v.userhash)
      })
    }

    it('RFC 7616 §3.9.2 as printed = SHA-512 truncated to 256 bits (erratum 4897)', async () => {
      const truncated = await rfc7616Example2WithTruncatedSha512()
      expect(truncated.userhash).toBe(RFC7616_2.printed.userhash)
      expect(truncated.response).toBe(RFC7616_2.printed.response)
    })

    it('RFC 7616 §3.9.2 with real SHA-512/256 gives the corrected values', () => {
      const v = RFC7616_2
      expect(userhash('SHA-512-256', v.username, v.realm)).toBe(v.corrected.userhash)
      const ha1 = baseHA1('SHA-512-256', v.username, v.realm, v.password)
      const response = computeResponse({
        algorithm: 'SHA-512-256',
        ha1,
        nonce: v.nonce,
        nc: v.nc,
        cnonce: v.cnonce,
        qop: v.qop,
        method: v.method,
        uri: v.uri,
      })
      expect(response).toBe(v.corrected.response)
      expect(response).not.toBe(v.printed.response)
    })

    for (const [hash, digest] of Object.entries(ABC_DIGESTS) as [HashName, string][]) {
      it(`${hash}("abc") = ${digest}`, () => {
        expect(hashHex(hash, 'abc')).toBe(digest)
        expect(hashHex(hash, new TextEncoder().encode('abc'))).toBe(digest)
        expect(nobleHashHex(hash, 'abc')).toBe(digest)
      })
    }
  })
}
