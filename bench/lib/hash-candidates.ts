/**
 * The ways of computing a Digest `response` that `npm run bench:micro` compares, under Node and
 * inside workerd (bench/workers/hash-micro). Runs in either runtime: no Node or Workers imports.
 *
 * - web-crypto: `crypto.subtle.digest`, awaited, where the runtime has the hash natively (MD5 and
 *   SHA-256 in workerd, SHA-256 in Node); @noble/hashes, awaited, elsewhere (SHA-512/256).
 * - noble: @noble/hashes, synchronous; noble-encodeInto: the same, the text encoded into a reused
 *   buffer instead of a new array per call.
 * - node-createHash / node-hash: node:crypto reached through `process.getBuiltinModule` (no
 *   static import), `createHash(…).update(…).digest('hex')` or the one-shot `hash(…)`.
 * - core: the protocol core's own `hashHex` and `computeResponse`, whatever it chose; and a
 *   verified request's pair (response, then rspauth), one by one or by computeResponseDigests.
 */
import { md5 } from '@noble/hashes/legacy.js'
import { sha256, sha512_256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import {
  computeResponse,
  computeResponseDigests,
  computeRspauth,
  hashOf,
  isSess,
} from '../../src/digest/algorithms.ts'
import { hashHex } from '../../src/digest/hash.ts'
import type { AlgorithmName, HashName } from '../../src/digest/types.ts'

type SyncHex = (hash: HashName, text: string) => string
type AsyncHex = (hash: HashName, text: string) => Promise<string>

interface NodeCrypto {
  createHash(algorithm: string): {
    update(data: string): { digest(encoding: 'hex'): string }
  }
  hash?: (algorithm: string, data: string, encoding: 'hex') => string
}

const NODE_NAME: Readonly<Record<HashName, string>> = {
  MD5: 'md5',
  'SHA-256': 'sha256',
  'SHA-512-256': 'sha512-256',
}
const NOBLE = { MD5: md5, 'SHA-256': sha256, 'SHA-512-256': sha512_256 } as const
const encoder = new TextEncoder()

function nodeCrypto(): NodeCrypto | undefined {
  const runtime = globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }
  return runtime.process?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined
}

const nobleHex: SyncHex = (hash, text) => bytesToHex(NOBLE[hash](encoder.encode(text)))

// A reused buffer: a fresh Uint8Array over 64 bytes lives outside V8's heap, ~0.7 µs in workerd.
let scratch = new Uint8Array(1024)
const nobleIntoHex: SyncHex = (hash, text) => {
  if (text.length * 3 > scratch.length) scratch = new Uint8Array(text.length * 3)
  const { written } = encoder.encodeInto(text, scratch)
  return bytesToHex(NOBLE[hash](scratch.subarray(0, written)))
}

async function subtleAvailable(name: string): Promise<boolean> {
  return crypto.subtle.digest(name, new Uint8Array(0)).then(
    () => true,
    () => false
  )
}

/** One request's inputs, shaped as the gate sees them (a SHA-256 key is 64 hex digits). */
export interface BenchRequest {
  algorithm: AlgorithmName
  ha1: string
  nonce: string
  nc: string
  cnonce: string
  method: string
  uri: string
}

/**
 * A request as the gate verifies it: a minted nonce (71 characters), a 44-character cnonce,
 * the base key of the algorithm's hash. The last hash then covers ~200-300 bytes.
 */
export function benchRequest(algorithm: AlgorithmName): BenchRequest {
  return {
    algorithm,
    ha1: nobleHex(hashOf(algorithm), 'alice:bench@example.org:correct horse'),
    nonce: 'AQJrSdIABmdhdGUtMUuMXMo0e880TyJRFmxQSa4sz73VvTCw32OaHg_ilWnEgJrHNcfGkk0',
    nc: '00000001',
    cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
    method: 'GET',
    uri: '/api/resource?id=42',
  }
}

/** RFC 7616 §3.4.1 with qop=auth: two hashes, three for -sess. */
function responseSync(hex: SyncHex, r: BenchRequest): string {
  const hash = hashOf(r.algorithm)
  const ha1 = isSess(r.algorithm) ? hex(hash, `${r.ha1}:${r.nonce}:${r.cnonce}`) : r.ha1
  const ha2 = hex(hash, `${r.method}:${r.uri}`)
  return hex(hash, `${ha1}:${r.nonce}:${r.nc}:${r.cnonce}:auth:${ha2}`)
}

async function responseAsync(hex: AsyncHex, r: BenchRequest): Promise<string> {
  const hash = hashOf(r.algorithm)
  const ha1 = isSess(r.algorithm) ? await hex(hash, `${r.ha1}:${r.nonce}:${r.cnonce}`) : r.ha1
  const ha2 = await hex(hash, `${r.method}:${r.uri}`)
  return hex(hash, `${ha1}:${r.nonce}:${r.nc}:${r.cnonce}:auth:${ha2}`)
}

export type Candidate =
  | {
      name: string
      sync: true
      hashHex: SyncHex
      response: (r: BenchRequest) => string
    }
  | {
      name: string
      sync: false
      hashHex: AsyncHex
      response: (r: BenchRequest) => Promise<string>
    }

/** The candidates this runtime can run, in a fixed order. */
export async function candidates(): Promise<Candidate[]> {
  const subtle: Record<HashName, boolean> = {
    MD5: await subtleAvailable('MD5'),
    'SHA-256': await subtleAvailable('SHA-256'),
    'SHA-512-256': false,
  }
  const webCryptoHex: AsyncHex = async (hash, text) => {
    const bytes = encoder.encode(text)
    if (!subtle[hash]) return bytesToHex(NOBLE[hash](bytes))
    return bytesToHex(new Uint8Array(await crypto.subtle.digest(hash, bytes)))
  }
  const list: Candidate[] = [
    {
      name: 'web-crypto',
      sync: false,
      hashHex: webCryptoHex,
      response: (r) => responseAsync(webCryptoHex, r),
    },
    { name: 'noble', sync: true, hashHex: nobleHex, response: (r) => responseSync(nobleHex, r) },
    {
      name: 'noble-encodeInto',
      sync: true,
      hashHex: nobleIntoHex,
      response: (r) => responseSync(nobleIntoHex, r),
    },
  ]
  const node = nodeCrypto()
  if (node !== undefined) {
    const createHashHex: SyncHex = (hash, text) =>
      node.createHash(NODE_NAME[hash]).update(text).digest('hex')
    list.push({
      name: 'node-createHash',
      sync: true,
      hashHex: createHashHex,
      response: (r) => responseSync(createHashHex, r),
    })
    const oneShot = node.hash
    if (oneShot !== undefined) {
      const hashHex: SyncHex = (hash, text) => oneShot(NODE_NAME[hash], text, 'hex')
      list.push({
        name: 'node-hash',
        sync: true,
        hashHex,
        response: (r) => responseSync(hashHex, r),
      })
    }
  }
  list.push({
    name: 'core',
    sync: true,
    hashHex,
    response: (r) => computeResponse({ ...r, qop: 'auth' }),
  })
  // What the gate hashes per verified request: the response, then the rspauth it answers with.
  list.push({
    name: 'core: response + rspauth, each whole',
    sync: true,
    hashHex,
    response: (r) => computeResponse({ ...r, qop: 'auth' }) + computeRspauth({ ...r, qop: 'auth' }),
  })
  list.push({
    name: 'core: response + rspauth, computeResponseDigests',
    sync: true,
    hashHex,
    response: (r) => {
      const digests = computeResponseDigests({ ...r, qop: 'auth' })
      return digests.response + digests.rspauth()
    },
  })
  return list
}

export interface Sample {
  calls: number
  elapsedMs: number
  microsecondsPerCall: number
}

/**
 * Calls `candidate.response` (a fresh nc each time) for at least `ms` milliseconds. Synchronous
 * candidates run in a plain loop: awaiting them would add the microtask cost being measured away.
 */
export async function sampleResponse(
  candidate: Candidate,
  request: BenchRequest,
  ms: number,
  firstNc = 1
): Promise<Sample> {
  let calls = 0
  let sink = 0
  const start = performance.now()
  let elapsed = 0
  while (elapsed < ms) {
    for (let k = 0; k < 100; k++) {
      const nc = (firstNc + calls++).toString(16).padStart(8, '0')
      const value = candidate.sync
        ? candidate.response({ ...request, nc })
        : await candidate.response({ ...request, nc })
      sink ^= value.charCodeAt(0)
    }
    elapsed = performance.now() - start
  }
  // `sink` keeps the results alive; it is never 256 (a char code of a hex digit XORed).
  if (sink === 256) throw new Error('unreachable')
  return { calls, elapsedMs: elapsed, microsecondsPerCall: (elapsed * 1000) / calls }
}

/** `hashHex` of one ~100-byte text (varied per call) for at least `ms` milliseconds. */
export async function sampleHash(
  candidate: Candidate,
  hash: HashName,
  ms: number
): Promise<Sample> {
  const prefix = 'x'.repeat(90)
  let calls = 0
  let sink = 0
  const start = performance.now()
  let elapsed = 0
  while (elapsed < ms) {
    for (let k = 0; k < 100; k++) {
      const text = `${prefix}${(calls++).toString(16).padStart(10, '0')}`
      const value = candidate.sync
        ? candidate.hashHex(hash, text)
        : await candidate.hashHex(hash, text)
      sink ^= value.charCodeAt(0)
    }
    elapsed = performance.now() - start
  }
  if (sink === 256) throw new Error('unreachable')
  return { calls, elapsedMs: elapsed, microsecondsPerCall: (elapsed * 1000) / calls }
}
