/**
 * Digest computations and hashes inside workerd: node:crypto's native hashes (nodejs_compat),
 * checked against Web Crypto and against the @noble/hashes fallback; DigestStream for bodies.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  ALGORITHMS,
  baseHA1,
  computeResponse,
  computeResponseDigests,
  computeRspauth,
  hashOf,
  isSess,
  parseAlgorithmName,
  timingSafeEqualString,
} from '../../src/digest/algorithms.ts'
import { DigestError } from '../../src/digest/errors.ts'
import {
  detectHashers,
  type HashImplementation,
  hashHex,
  hashImplementation,
  hashStreamHex,
  nobleHashHex,
  type RuntimeGlobals,
} from '../../src/digest/hash.ts'
import type { AlgorithmName, HashName, Qop } from '../../src/digest/types.ts'
import { describeRfcVectors } from './vectors.ts'

const HASHES: HashName[] = ['MD5', 'SHA-256', 'SHA-512-256']

/** Reference hash straight from Web Crypto (SHA-512-256 has none: checked in the Node suite). */
async function subtleHex(name: 'MD5' | 'SHA-256', text: string | Uint8Array): Promise<string> {
  const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text
  return Buffer.from(await crypto.subtle.digest(name, bytes)).toString('hex')
}

/** What `f` throws (it must throw). */
function thrown(f: () => unknown): unknown {
  try {
    f()
  } catch (e) {
    return e
  }
  throw new Error('did not throw')
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

/** Text with lone surrogates now and then: both paths must encode them as U+FFFD. */
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: fc.integer({ min: 0xd7f0, max: 0xe010 }).map((c) => String.fromCharCode(c)) })
)
const anyData = fc.oneof(anyText, fc.uint8Array({ maxLength: 600 }))

describe('hashes in workerd', () => {
  it("hashes with @noble/hashes, faster here than workerd's node:crypto", () => {
    for (const hash of HASHES) expect(hashImplementation(hash)).toBe('@noble/hashes')
  })

  it('property: hashHex equals crypto.subtle for MD5 and SHA-256', async () => {
    await fc.assert(
      fc.asyncProperty(anyText, async (text) => {
        expect(hashHex('MD5', text)).toBe(await subtleHex('MD5', text))
        expect(hashHex('SHA-256', text)).toBe(await subtleHex('SHA-256', text))
      }),
      { numRuns: 100 }
    )
  })

  it('property: node:crypto (as another runtime would use it) and @noble/hashes agree, every hash', () => {
    const node = detectHashers({ process: (globalThis as RuntimeGlobals).process })
    for (const hash of HASHES) expect(node.implementation[hash]).toBe('node:crypto')
    fc.assert(
      fc.property(fc.constantFrom(...HASHES), anyData, (hash, data) => {
        expect(node.digest[hash](data)).toBe(nobleHashHex(hash, data))
        expect(hashHex(hash, data)).toBe(nobleHashHex(hash, data))
      }),
      { numRuns: 500 }
    )
  })

  it('lone surrogates hash as U+FFFD on both paths', () => {
    for (const hash of HASHES) {
      const replaced = nobleHashHex(hash, 'a\uFFFDb\uFFFD')
      expect(hashHex(hash, 'a\uD800b\uDFFF')).toBe(replaced)
      expect(nobleHashHex(hash, 'a\uD800b\uDFFF')).toBe(replaced)
      const node = detectHashers({ process: (globalThis as RuntimeGlobals).process })
      expect(node.digest[hash]('a\uD800b\uDFFF')).toBe(replaced)
    }
  })

  it('detection falls back to @noble/hashes per hash, with the same answers', () => {
    const real = (globalThis as RuntimeGlobals).process?.getBuiltinModule?.('node:crypto') as {
      createHash(name: string): unknown
    }
    const partial = {
      // As a FIPS build: no MD5; and a SHA-512/256 that is really SHA-512 (wrong answer).
      createHash(name: string) {
        if (name === 'md5') throw new Error('disabled for FIPS')
        return real.createHash(name === 'sha512-256' ? 'sha512' : name)
      },
    }
    const runtimes: [RuntimeGlobals, HashImplementation[]][] = [
      [{}, ['@noble/hashes', '@noble/hashes', '@noble/hashes']],
      [{ process: {} }, ['@noble/hashes', '@noble/hashes', '@noble/hashes']],
      [
        {
          process: {
            getBuiltinModule: () => {
              throw new Error('no such module')
            },
          },
        },
        ['@noble/hashes', '@noble/hashes', '@noble/hashes'],
      ],
      [
        { process: { getBuiltinModule: () => partial } },
        ['@noble/hashes', 'node:crypto', '@noble/hashes'],
      ],
      [
        { process: (globalThis as RuntimeGlobals).process },
        ['node:crypto', 'node:crypto', 'node:crypto'],
      ],
      [globalThis as RuntimeGlobals, ['@noble/hashes', '@noble/hashes', '@noble/hashes']],
    ]
    for (const [runtime, expected] of runtimes) {
      const hashers = detectHashers(runtime)
      expect(HASHES.map((hash) => hashers.implementation[hash])).toEqual(expected)
      for (const hash of HASHES) {
        for (const data of [
          '',
          'Mufasa:http-auth@example.org:Circle of Life',
          new Uint8Array(200),
        ]) {
          expect(hashers.digest[hash](data)).toBe(nobleHashHex(hash, data))
        }
      }
    }
  })

  it('property: streamed digest equals one-shot digest, every hash', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...HASHES),
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
        async (hash, chunks) => {
          const whole = new Uint8Array(Buffer.concat(chunks))
          expect(await hashStreamHex(hash, streamOf(chunks))).toBe(hashHex(hash, whole))
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
        hashHex(hash, new Uint8Array(Buffer.concat(chunks)))
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
          expect(computeResponse(input)).toBe(expected)
        }
      ),
      { numRuns: 60 }
    )
  })

  it('rspauth uses an empty method in A2', async () => {
    const ha1 = baseHA1('SHA-256', 'Mufasa', 'http-auth@example.org', 'Circle of Life')
    const input = { ...base, algorithm: 'SHA-256' as const, ha1, qop: 'auth' as const }
    const ha2 = await subtleHex('SHA-256', `:${base.uri}`)
    const expected = await subtleHex(
      'SHA-256',
      `${ha1}:${base.nonce}:${base.nc}:${base.cnonce}:auth:${ha2}`
    )
    expect(computeRspauth(input)).toBe(expected)
    expect(computeRspauth(input)).toBe(computeResponse({ ...input, method: '' }))
    expect(computeRspauth(input)).not.toBe(computeResponse(input))
  })

  it('property: computeResponseDigests gives what computeResponse and computeRspauth give', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ALGORITHMS),
        fc.constantFrom<Qop | undefined>('auth', 'auth-int', undefined),
        fc.record({
          nonce: anyText,
          nc: fc.constantFrom('00000001', '0000000a', 'ffffffff'),
          cnonce: anyText,
          method: fc.constantFrom('GET', 'POST', 'PROPFIND', ''),
          uri: anyText,
          bodyHash: fc.constantFrom('', 'a'.repeat(64)),
        }),
        (algorithm, qop, fields) => {
          const input = { ...fields, algorithm, qop, ha1: hashHex(hashOf(algorithm), 'u:r:p') }
          const digests = computeResponseDigests(input)
          expect(digests.response).toBe(computeResponse(input))
          expect(digests.rspauth()).toBe(computeRspauth(input))
          // Asked twice, the same.
          expect(digests.rspauth()).toBe(computeRspauth(input))
        }
      ),
      { numRuns: 300 }
    )
  })

  it('computeResponseDigests refuses what computeResponse refuses', () => {
    const input = { ...base, algorithm: 'MD5' as const, ha1: 'x', qop: 'auth' as const }
    expect(thrown(() => computeResponseDigests({ ...input, nc: undefined }))).toMatchObject({
      code: 'missing_directive',
      directive: 'nc',
    })
    expect(
      thrown(() => computeResponseDigests({ ...input, algorithm: 'MD5-sess', cnonce: undefined }))
    ).toMatchObject({ code: 'missing_directive', directive: 'cnonce' })
    expect(() => computeResponseDigests({ ...input, qop: 'auth-int' })).toThrow(TypeError)
  })

  it('nc enters the hash verbatim', () => {
    const input = { ...base, algorithm: 'MD5' as const, ha1: 'x', qop: 'auth' as const }
    expect(computeResponse({ ...input, nc: '0000000a' })).not.toBe(
      computeResponse({ ...input, nc: '0000000A' })
    )
  })

  it('refuses qop without nc/cnonce and -sess without cnonce with a DigestError', () => {
    const input = { ...base, algorithm: 'MD5' as const, ha1: 'x', qop: 'auth' as const }
    expect(thrown(() => computeResponse({ ...input, nc: undefined }))).toBeInstanceOf(DigestError)
    expect(thrown(() => computeResponse({ ...input, cnonce: undefined }))).toMatchObject({
      code: 'missing_directive',
      directive: 'cnonce',
    })
    expect(
      thrown(() =>
        computeResponse({ ...input, algorithm: 'SHA-256-sess', qop: undefined, cnonce: undefined })
      )
    ).toMatchObject({ code: 'missing_directive', directive: 'cnonce' })
  })

  it('refuses auth-int without a body hash (caller bug)', () => {
    const input = { ...base, algorithm: 'MD5' as const, ha1: 'x', qop: 'auth-int' as const }
    expect(() => computeResponse(input)).toThrow(TypeError)
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
