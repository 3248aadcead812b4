/**
 * `digest-gate/core`: the Digest protocol itself (header parsing and formatting, the RFC 7616
 * computations, nonce and opaque tokens, the nc window); pure TypeScript, no Hono or Workers.
 */
export * from '../digest/index.ts'
