/**
 * Hash functions of RFC 7616, hex-encoded. `hashHex` is synchronous: the gate's security-context
 * Durable Object verifies a response and records the outcome in one step, and an object is atomic
 * only up to its next non-storage await.
 *
 * Native node:crypto where the runtime offers it through `process.getBuiltinModule` (Node >= 20.16,
 * Deno, Bun), never statically imported so that the core runs anywhere; each hash is checked once
 * per isolate against known answers. In workerd, in browsers, and for any hash that fails the
 * check, @noble/hashes (pure JS).
 *
 * Measured (docs/performance.md, "Digest hashing"): under Node node:crypto is ~5x faster than
 * @noble/hashes (2.3 against 12.2 µs per SHA-256 `computeResponse`). workerd wraps each node:crypto
 * hash in a JS stream object over Buffers: tied with @noble/hashes in a tight loop, but in the
 * gate under load its four hashes per verified request cost 0.068 ms more than @noble/hashes'
 * (bench/ab.ts, replay off, medians of 4 interleaved rounds: 0.736 against 0.668 ms per request).
 *
 * `hashStreamHex` (auth-int bodies) stays asynchronous and streaming: workerd's native
 * DigestStream where it has the hash, incremental @noble/hashes elsewhere.
 */
import { md5 } from '@noble/hashes/legacy.js'
import { sha256, sha512_256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import type { HashName } from './types.ts'

type HexDigest = (data: string | Uint8Array) => string

const encoder = new TextEncoder()

/** The pure-JS implementation of each hash. */
const NOBLE = { MD5: md5, 'SHA-256': sha256, 'SHA-512-256': sha512_256 } as const

/** node:crypto's name of each hash. */
const NODE_NAME: Readonly<Record<HashName, string>> = {
  MD5: 'md5',
  'SHA-256': 'sha256',
  'SHA-512-256': 'sha512-256',
}

/** H("abc"), FIPS 180-4 and RFC 1321. */
const ABC: Readonly<Record<HashName, string>> = {
  MD5: '900150983cd24fb0d6963f7d28e17f72',
  'SHA-256': 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  'SHA-512-256': '53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23',
}

/** The part of node:crypto used here. */
interface NodeCrypto {
  createHash(algorithm: string): {
    update(data: string | Uint8Array): { digest(encoding: 'hex'): string }
  }
  /** One-shot hash (Node >= 20.12); absent in older runtimes. */
  hash?: (algorithm: string, data: string | Uint8Array, encoding: 'hex') => string
}

/** The globals that detection looks at: `globalThis` or, in tests, a stand-in. */
export interface RuntimeGlobals {
  process?: { getBuiltinModule?: (id: string) => unknown }
  navigator?: { userAgent?: string }
}

/** workerd (Cloudflare Workers, self-hosted workerd), where @noble/hashes is the faster. */
function isWorkerd(runtime: RuntimeGlobals): boolean {
  return runtime.navigator?.userAgent === 'Cloudflare-Workers'
}

function nodeCrypto(runtime: RuntimeGlobals): NodeCrypto | undefined {
  try {
    const module = runtime.process?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined
    return typeof module?.createHash === 'function' ? module : undefined
  } catch {
    return undefined
  }
}

/** @noble/hashes: text as UTF-8, lone surrogates as U+FFFD (TextEncoder's rule). */
export function nobleHashHex(hash: HashName, data: string | Uint8Array): string {
  return bytesToHex(NOBLE[hash](typeof data === 'string' ? encoder.encode(data) : data))
}

/**
 * node:crypto's digest of one hash, or undefined when the runtime lacks it or gets it wrong: the
 * FIPS 180-4 / RFC 1321 answer for "abc", and a lone surrogate encoded as U+FFFD (TextEncoder's
 * rule, so both paths hash every string alike).
 */
function nodeDigest(node: NodeCrypto, hash: HashName): HexDigest | undefined {
  const name = NODE_NAME[hash]
  const oneShot = node.hash
  const digest: HexDigest =
    typeof oneShot === 'function'
      ? (data) => oneShot(name, data, 'hex')
      : (data) => node.createHash(name).update(data).digest('hex')
  try {
    const correct = digest('abc') === ABC[hash] && digest('\uD800') === nobleHashHex(hash, '\uD800')
    return correct ? digest : undefined
  } catch {
    return undefined
  }
}

export type HashImplementation = 'node:crypto' | '@noble/hashes'

/** How a runtime hashes: for each hash function, the digest and where it comes from. */
export interface Hashers {
  digest: Readonly<Record<HashName, (data: string | Uint8Array) => string>>
  implementation: Readonly<Record<HashName, HashImplementation>>
}

/**
 * node:crypto for each hash that `runtime` offers and that passes its known answer, else noble;
 * noble throughout in workerd.
 */
export function detectHashers(runtime: RuntimeGlobals): Hashers {
  const node = isWorkerd(runtime) ? undefined : nodeCrypto(runtime)
  const digest = {} as Record<HashName, HexDigest>
  const implementation = {} as Record<HashName, HashImplementation>
  for (const hash of Object.keys(NODE_NAME) as HashName[]) {
    const native = node === undefined ? undefined : nodeDigest(node, hash)
    digest[hash] = native ?? ((data) => nobleHashHex(hash, data))
    implementation[hash] = native === undefined ? '@noble/hashes' : 'node:crypto'
  }
  return { digest, implementation }
}

// Detected once per isolate, on first use.
let hashers: Hashers | undefined

/** Which implementation `hashHex` uses for `hash` in this runtime. */
export function hashImplementation(hash: HashName): HashImplementation {
  hashers ??= detectHashers(globalThis as RuntimeGlobals)
  return hashers.implementation[hash]
}

/** Lower-case hex digest of UTF-8 text or bytes. */
export function hashHex(hash: HashName, data: string | Uint8Array): string {
  hashers ??= detectHashers(globalThis as RuntimeGlobals)
  return hashers.digest[hash](data)
}

/** The Web Crypto name of a hash that workerd's DigestStream has. */
const STREAM_NAME: Readonly<Record<HashName, string | undefined>> = {
  MD5: 'MD5',
  'SHA-256': 'SHA-256',
  'SHA-512-256': undefined,
}

interface DigestStreamLike extends WritableStream<Uint8Array> {
  readonly digest: Promise<ArrayBuffer>
}
type DigestStreamCtor = new (algorithm: string) => DigestStreamLike

/** workerd's native streaming digest; absent in Node and browsers. */
function digestStreamCtor(): DigestStreamCtor | undefined {
  return (crypto as unknown as { DigestStream?: DigestStreamCtor }).DigestStream
}

/** Streaming digest of a body (for `auth-int`), hex. A null body hashes as empty. */
export async function hashStreamHex(
  hash: HashName,
  body: ReadableStream<Uint8Array> | null
): Promise<string> {
  if (body === null) return hashHex(hash, new Uint8Array(0))
  const DigestStream = digestStreamCtor()
  const streamName = STREAM_NAME[hash]
  if (DigestStream !== undefined && streamName !== undefined) {
    const sink = new DigestStream(streamName)
    await body.pipeTo(sink)
    return bytesToHex(new Uint8Array(await sink.digest))
  }
  const hasher = NOBLE[hash].create()
  const reader = body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    hasher.update(value)
  }
  return bytesToHex(hasher.digest())
}
