/**
 * `digest-gate/client`: a `fetch` wrapper that answers Digest challenges (RFC 7616), for calling
 * Digest-protected APIs from any runtime.
 */
export {
  createDigestClient,
  type DigestClient,
  type DigestClientOptions,
  RspauthMismatchError,
} from '../digest/client.ts'
export type { AlgorithmName, Qop } from '../digest/types.ts'
