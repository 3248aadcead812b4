/**
 * Hash functions of RFC 7616, hex-encoded. MD5 and SHA-256 come from Web Crypto where the runtime
 * has a native, fast Web Crypto: workerd, detected once by its non-standard MD5 support. Elsewhere
 * (Node, browsers) everything runs on @noble/hashes: Node's Web Crypto has no MD5, and its
 * `digest` is a thread-pool round trip (~60-150 µs for a short string against ~4 µs in JS).
 * SHA-512/256 is @noble/hashes everywhere: no runtime offers it in Web Crypto.
 */
import { md5 } from '@noble/hashes/legacy.js'
import { sha256, sha512_256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import type { HashName } from './types.ts'

const encoder = new TextEncoder()

/** The Web Crypto name of a hash, where Web Crypto may have it. */
const SUBTLE_NAME: Readonly<Record<HashName, string | undefined>> = {
  MD5: 'MD5',
  'SHA-256': 'SHA-256',
  'SHA-512-256': undefined,
}

/** The pure-JS implementation of each hash, used where Web Crypto is not the native one. */
const NOBLE = { MD5: md5, 'SHA-256': sha256, 'SHA-512-256': sha512_256 } as const

// Runs once per isolate: MD5 in crypto.subtle is a workerd extension.
let nativeSubtle: Promise<boolean> | undefined

function hasNativeSubtle(): Promise<boolean> {
  nativeSubtle ??= crypto.subtle.digest('MD5', new Uint8Array(0)).then(
    () => true,
    () => false
  )
  return nativeSubtle
}

/** The Web Crypto name to use for `hash`, or undefined to use @noble/hashes. */
async function useSubtle(hash: HashName): Promise<string | undefined> {
  const name = SUBTLE_NAME[hash]
  if (name === undefined || !(await hasNativeSubtle())) return undefined
  return name
}

/** Lower-case hex digest of UTF-8 text or bytes. */
export async function hashHex(hash: HashName, data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === 'string' ? encoder.encode(data) : data
  const subtleName = await useSubtle(hash)
  if (subtleName !== undefined) {
    // Digest bodies are never shared memory; the cast only satisfies the DOM typings.
    const digest = await crypto.subtle.digest(subtleName, bytes as Uint8Array<ArrayBuffer>)
    return bytesToHex(new Uint8Array(digest))
  }
  return bytesToHex(NOBLE[hash](bytes))
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
  const subtleName = DigestStream === undefined ? undefined : await useSubtle(hash)
  if (DigestStream !== undefined && subtleName !== undefined) {
    const sink = new DigestStream(subtleName)
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
