/** Digest computations and hashes inside workerd (native MD5 / SHA-256, DigestStream). */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  ALGORITHMS,
  baseHA1,
  computeResponse,
  computeRspauth,
  hashOf,
  isSess,
  parseAlgorithmName,
  timingSafeEqualString,
} from '../../src/digest/algorithms.ts'
import { DigestError } from '../../src/digest/errors.ts'
import { hashHex, hashStreamHex } from '../../src/digest/hash.ts'
import type { AlgorithmName, HashName, Qop } from '../../src/digest/types.ts'
import { describeRfcVectors } from './vectors.ts'

const HASHES: HashName[] = ['MD5', 'SHA-256', 'SHA-512-256']

/** Reference hash straight from Web Crypto (SHA-512-256 has none: checked in the Node suite). */
async function subtleHex(name: 'MD5' | 'SHA-256', text: string | Uint8Array): Promise<string> {
  const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text
  return Buffer.from(await crypto.subtle.digest(name, bytes)).toString('hex')
}

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk)
      controller.close()
    },
  })
}

describeRfcVectors()

describe('algorithm names', () => {
  it('canonicalises any case', () => {
    expect(parseAlgorithmName('sha-256-SESS')).toBe('SHA-256-sess')
    expect(parseAlgorithmName('md5')).toBe('MD5')
    expect(parseAlgorithmName('Sha-512-256')).toBe('SHA-512-256')
    expect(parseAlgorithmName('MD5-SESS')).toBe('MD5-sess')
  })

  it('refuses unknown and near-miss tokens', () => {
    for (const token of ['', 'SHA256', 'SHA-512', 'SHA2-256', 'MD5 ', ' MD5', 'md5-sess-sess']) {
      expect(parseAlgorithmName(token)).toBeUndefined()
    }
    expect(parseAlgorithmName('__proto__')).toBeUndefined()
    expect(parseAlgorithmName('constructor')).toBeUndefined()
  })

  it('property: random case flips map back to the canonical name', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ALGORITHMS),
        fc.array(fc.boolean(), { minLength: 20, maxLength: 20 }),
        (name, flips) => {
          const mixed = [...name]
            .map((c, i) => (flips[i] ? c.toUpperCase() : c.toLowerCase()))
            .join('')
          expect(parseAlgorithmName(mixed)).toBe(name)
        }
      )
    )
  })

  it('property: anything else is unknown', () => {
    const known = new Set(ALGORITHMS.map((a) => a.toLowerCase()))
    fc.assert(
      fc.property(fc.string(), (token) => {
        fc.pre(!known.has(token.toLowerCase()))
        expect(parseAlgorithmName(token)).toBeUndefined()
      })
    )
  })

  it('hashOf and isSess', () => {
    expect(ALGORITHMS.map(hashOf)).toEqual([
      'MD5',
      'MD5',
      'SHA-256',
      'SHA-256',
      'SHA-512-256',
      'SHA-512-256',
    ])
    expect(ALGORITHMS.map(isSess)).toEqual([false, true, false, true, false, true])
  })
})

describe('hashes in workerd', () => {
  it('property: hashHex equals crypto.subtle for MD5 and SHA-256', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary' }), async (text) => {
        expect(await hashHex('MD5', text)).toBe(await subtleHex('MD5', text))
        expect(await hashHex('SHA-256', text)).toBe(await subtleHex('SHA-256', text))
      }),
      { numRuns: 100 }
    )
  })

  it('property: streamed digest equals one-shot digest, every hash', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...HASHES),
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
        async (hash, chunks) => {
          const whole = new Uint8Array(Buffer.concat(chunks))
          expect(await hashStreamHex(hash, streamOf(chunks))).toBe(await hashHex(hash, whole))
        }
      ),
      { numRuns: 100 }
    )
  })

  it('a null body hashes as empty', async () => {
    expect(await hashStreamHex('MD5', null)).toBe('d41d8cd98f00b204e9800998ecf8427e')
    expect(await hashStreamHex('SHA-256', null)).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    )
    expect(await hashStreamHex('SHA-512-256', null)).toBe(
      'c672b8d1ef56ed28ab87c3622c5114069bdd3ad7b8f9737498d0c01ecef0967a'
    )
  })

  it('a large streamed body (1 MiB) matches', async () => {
    const chunk = new Uint8Array(64 * 1024).map((_, i) => i * 31)
    const chunks = Array.from({ length: 16 }, () => chunk)
    for (const hash of HASHES) {
      expect(await hashStreamHex(hash, streamOf(chunks))).toBe(
        await hashHex(hash, new Uint8Array(Buffer.concat(chunks)))
      )
    }
  })
})

describe('computeResponse and computeRspauth', () => {
  const base = {
    nonce: 'bm9uY2U',
    nc: '0000000a',
    cnonce: 'Y25vbmNl',
    method: 'POST',
    uri: '/api?x=1',
  } as const

  it('property: matches the RFC 7616 §3.4 formulas written out with crypto.subtle', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<AlgorithmName>('MD5', 'MD5-sess', 'SHA-256', 'SHA-256-sess'),
        fc.constantFrom<Qop | undefined>('auth', 'auth-int', undefined),
        fc.string(),
        fc.string(),
        async (algorithm, qop, uri, body) => {
          const h = hashOf(algorithm) as 'MD5' | 'SHA-256'
          const ha1 = await subtleHex(h, 'user:realm:pw')
          const key = isSess(algorithm)
            ? await subtleHex(h, `${ha1}:${base.nonce}:${base.cnonce}`)
            : ha1
          const bodyHash = await subtleHex(h, body)
          const a2 = qop === 'auth-int' ? `${base.method}:${uri}:${bodyHash}` : `PUT:${uri}`
          const method = qop === 'auth-int' ? base.method : 'PUT'
          const ha2 = await subtleHex(h, a2)
          const expected =
            qop === undefined
              ? await subtleHex(h, `${key}:${base.nonce}:${ha2}`)
              : await subtleHex(h, `${key}:${base.nonce}:${base.nc}:${base.cnonce}:${qop}:${ha2}`)
          const input = { ...base, algorithm, ha1, qop, uri, bodyHash, method }
          expect(await computeResponse(input)).toBe(expected)
        }
      ),
      { numRuns: 60 }
    )
  })

  it('rspauth uses an empty method in A2', async () => {
    const ha1 = await baseHA1('SHA-256', 'Mufasa', 'http-auth@example.org', 'Circle of Life')
    const input = { ...base, algorithm: 'SHA-256' as const, ha1, qop: 'auth' as const }
    const ha2 = await subtleHex('SHA-256', `:${base.uri}`)
    const expected = await subtleHex(
      'SHA-256',
      `${ha1}:${base.nonce}:${base.nc}:${base.cnonce}:auth:${ha2}`
    )
    expect(await computeRspauth(input)).toBe(expected)
    expect(await computeRspauth(input)).toBe(await computeResponse({ ...input, method: '' }))
    expect(await computeRspauth(input)).not.toBe(await computeResponse(input))
  })

  it('nc enters the hash verbatim', async () => {
    const input = { ...base, algorithm: 'MD5' as const, ha1: 'x', qop: 'auth' as const }
    expect(await computeResponse({ ...input, nc: '0000000a' })).not.toBe(
      await computeResponse({ ...input, nc: '0000000A' })
    )
  })

  it('refuses qop without nc/cnonce and -sess without cnonce with a DigestError', async () => {
    const input = { ...base, algorithm: 'MD5' as const, ha1: 'x', qop: 'auth' as const }
    await expect(computeResponse({ ...input, nc: undefined })).rejects.toBeInstanceOf(DigestError)
    await expect(computeResponse({ ...input, cnonce: undefined })).rejects.toMatchObject({
      code: 'missing_directive',
      directive: 'cnonce',
    })
    await expect(
      computeResponse({ ...input, algorithm: 'SHA-256-sess', qop: undefined, cnonce: undefined })
    ).rejects.toMatchObject({ code: 'missing_directive', directive: 'cnonce' })
  })

  it('refuses auth-int without a body hash (caller bug)', async () => {
    const input = { ...base, algorithm: 'MD5' as const, ha1: 'x', qop: 'auth-int' as const }
    await expect(computeResponse(input)).rejects.toBeInstanceOf(TypeError)
  })
})

describe('timingSafeEqualString', () => {
  it('equal, different, different lengths, empty', () => {
    expect(timingSafeEqualString('abc', 'abc')).toBe(true)
    expect(timingSafeEqualString('', '')).toBe(true)
    expect(timingSafeEqualString('abc', 'abd')).toBe(false)
    expect(timingSafeEqualString('abc', 'ab')).toBe(false)
    expect(timingSafeEqualString('', 'a')).toBe(false)
    expect(timingSafeEqualString('a\u0000', 'a')).toBe(false)
    expect(timingSafeEqualString('\u0100', '\u0000')).toBe(false)
  })

  it('property: agrees with ===', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        expect(timingSafeEqualString(a, b)).toBe(a === b)
        expect(timingSafeEqualString(a, a)).toBe(true)
      })
    )
  })
})
