/**
 * The protocol core's hashing under plain Node, cross-checked against node:crypto's native MD5 /
 * SHA-256 / SHA-512/256 imported here directly: the core's own node:crypto path (reached through
 * process.getBuiltinModule) and its @noble/hashes fallback. Plus the RFC vectors.
 */
import { createHash } from 'node:crypto'
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
  userhash,
} from '../../src/digest/algorithms.ts'
import { hashHex, hashImplementation, hashStreamHex, nobleHashHex } from '../../src/digest/hash.ts'
import { createTokenMinter, newContextHandle, readNonceFields } from '../../src/digest/tokens.ts'
import type { AlgorithmName, HashName, Qop } from '../../src/digest/types.ts'
import { describeRfcVectors } from './vectors.ts'

const NODE_NAME: Record<HashName, string> = {
  MD5: 'md5',
  'SHA-256': 'sha256',
  'SHA-512-256': 'sha512-256',
}
const HASHES = Object.keys(NODE_NAME) as HashName[]

function nodeHex(hash: HashName, data: string | Uint8Array): string {
  return createHash(NODE_NAME[hash]).update(data).digest('hex')
}

/** RFC 7616 §3.4, written out independently with node:crypto. */
function nodeResponse(i: {
  algorithm: AlgorithmName
  username: string
  realm: string
  password: string
  nonce: string
  nc: string
  cnonce: string
  qop: Qop | undefined
  method: string
  uri: string
  body: Uint8Array
}): string {
  const H = (s: string) => nodeHex(hashOf(i.algorithm), s)
  const base = H(`${i.username}:${i.realm}:${i.password}`)
  const ha1 = isSess(i.algorithm) ? H(`${base}:${i.nonce}:${i.cnonce}`) : base
  const a2 =
    i.qop === 'auth-int'
      ? `${i.method}:${i.uri}:${nodeHex(hashOf(i.algorithm), i.body)}`
      : `${i.method}:${i.uri}`
  return i.qop === undefined
    ? H(`${ha1}:${i.nonce}:${H(a2)}`)
    : H(`${ha1}:${i.nonce}:${i.nc}:${i.cnonce}:${i.qop}:${H(a2)}`)
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

/** Text with lone surrogates now and then (node:crypto, like TextEncoder, makes them U+FFFD). */
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: fc.integer({ min: 0xd7f0, max: 0xe010 }).map((c) => String.fromCharCode(c)) })
)
const anyData = fc.oneof(anyText, fc.uint8Array({ maxLength: 600 }))

describe('hashes against node:crypto', () => {
  it('hashes natively: node:crypto for every hash (Node >= 20.16)', () => {
    for (const hash of HASHES) expect(hashImplementation(hash)).toBe('node:crypto')
  })

  it('property: hashHex and the @noble/hashes fallback, text and bytes, every hash', () => {
    fc.assert(
      fc.property(fc.constantFrom(...HASHES), anyData, (hash, data) => {
        const expected = nodeHex(hash, data)
        expect(hashHex(hash, data)).toBe(expected)
        expect(nobleHashHex(hash, data)).toBe(expected)
      }),
      { numRuns: 500 }
    )
  })

  it('block-boundary lengths, both paths', () => {
    for (const hash of HASHES) {
      for (const n of [0, 1, 55, 56, 63, 64, 65, 111, 112, 127, 128, 129, 1000]) {
        const data = new Uint8Array(n).fill(0x61)
        expect(hashHex(hash, data), `${hash} ${n}`).toBe(nodeHex(hash, data))
        expect(nobleHashHex(hash, data), `${hash} ${n}`).toBe(nodeHex(hash, data))
      }
    }
  })

  it('property: hashStreamHex over random chunkings, every hash', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...HASHES),
        fc.array(fc.uint8Array({ maxLength: 500 }), { maxLength: 10 }),
        async (hash, chunks) => {
          expect(await hashStreamHex(hash, streamOf(chunks))).toBe(
            nodeHex(hash, Buffer.concat(chunks))
          )
        }
      ),
      { numRuns: 200 }
    )
    for (const hash of HASHES) expect(await hashStreamHex(hash, null)).toBe(nodeHex(hash, ''))
  })
})

describe('algorithms against node:crypto', () => {
  const text = fc.string({ unit: 'grapheme', maxLength: 40 })

  it('property: baseHA1 and userhash', () => {
    fc.assert(
      fc.property(fc.constantFrom(...HASHES), text, text, text, (hash, u, r, p) => {
        expect(baseHA1(hash, u, r, p)).toBe(nodeHex(hash, `${u}:${r}:${p}`))
        expect(userhash(hash, u, r)).toBe(nodeHex(hash, `${u}:${r}`))
      }),
      { numRuns: 200 }
    )
  })

  it('property: computeResponse and computeRspauth, every algorithm and qop', () => {
    fc.assert(
      fc.property(
        fc.record({
          algorithm: fc.constantFrom(...ALGORITHMS),
          username: text,
          realm: text,
          password: text,
          nonce: fc.base64String({ maxLength: 60 }),
          nc: fc.integer({ min: 1, max: 0xffffffff }).map((n) => n.toString(16).padStart(8, '0')),
          cnonce: fc.string({ minLength: 8, maxLength: 48 }),
          qop: fc.constantFrom<Qop | undefined>('auth', 'auth-int', undefined),
          method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PROPFIND'),
          uri: fc.webPath(),
          body: fc.uint8Array({ maxLength: 200 }),
        }),
        (i) => {
          const hash = hashOf(i.algorithm)
          const input = {
            algorithm: i.algorithm,
            ha1: baseHA1(hash, i.username, i.realm, i.password),
            nonce: i.nonce,
            nc: i.nc,
            cnonce: i.cnonce,
            qop: i.qop,
            method: i.method,
            uri: i.uri,
            bodyHash: nodeHex(hash, i.body),
          }
          expect(computeResponse(input)).toBe(nodeResponse(i))
          expect(computeRspauth(input)).toBe(nodeResponse({ ...i, method: '' }))
          const digests = computeResponseDigests(input)
          expect(digests.response).toBe(nodeResponse(i))
          expect(digests.rspauth()).toBe(nodeResponse({ ...i, method: '' }))
        }
      ),
      { numRuns: 300 }
    )
  })
})

describe('tokens under Node', () => {
  it('mint, verify and read a nonce', async () => {
    const minter = await createTokenMinter({ current: { id: 7, secret: 'node secret' } })
    const handle = newContextHandle()
    const nonce = await minter.mintNonce({ serverId: 'gate-node', handle, now: 1_800_000_000 })
    expect(readNonceFields(nonce)).toEqual({
      serverId: 'gate-node',
      issuedAt: 1_800_000_000,
      handle,
      keyId: 7,
    })
    const expect_ = { serverId: 'gate-node', now: 1_800_000_010, lifetimeSeconds: 300 }
    expect(await minter.verifyNonce(nonce, expect_)).toMatchObject({
      kind: 'valid',
      ageSeconds: 10,
    })
    const opaque = await minter.mintOpaque(handle)
    expect(await minter.verifyOpaque(opaque)).toEqual({ kind: 'valid', handle, keyId: 7 })
  })
})
