/**
 * Hash functions of RFC 7616, hex-encoded. MD5 and SHA-256 come from Web Crypto where the runtime
 * has them (workerd has MD5; Node's Web Crypto does not), SHA-512/256 from @noble/hashes.
 */
import type { HashName } from './types.ts'

/** Lower-case hex digest of UTF-8 text or bytes. */
export declare function hashHex(hash: HashName, data: string | Uint8Array): Promise<string>

/** Streaming digest of a body (for `auth-int`), hex. */
export declare function hashStreamHex(
  hash: HashName,
  body: ReadableStream<Uint8Array> | null
): Promise<string>
