/**
 * `digest-gate`: Digest authentication (RFC 7616) as Hono middleware, the stores it can use in any
 * runtime, and the interfaces of what it plugs into. Loads in Node, Bun, Deno and workerd: nothing
 * imported here reaches `cloudflare:workers`, so the Durable Object classes and their stores live
 * in `digest-gate/cloudflare`.
 */
export type {
  Principal,
  VerifyRequest,
  VerifyResponse,
  WireDirectives,
} from '../authority-protocol/v1.ts'
export type { ReplayMode } from '../digest/nc-window.ts'
export type { TokenKey, TokenKeys } from '../digest/tokens.ts'
export type { AlgorithmName, HashName, Qop } from '../digest/types.ts'
// The authority (the domain controller): the HTTP client of protocol v1, or one's own.
export {
  type AuthorityAnswer,
  type AuthorityClient,
  type HttpAuthorityOptions,
  httpAuthority,
} from '../gate/authority-client.ts'
export {
  type BrakeAttempt,
  type BrakePolicy,
  type BrakeReason,
  type BrakeStore,
  type BrakeVerdict,
  DEFAULT_BRAKE_POLICY,
} from '../gate/brake-policy.ts'
// What the stores are given and answer: enough to write one's own.
export type {
  Binding,
  CachedContext,
  ContextPolicy,
  ContextRequest,
  ContextStore,
  EstablishAnswer,
  EstablishRequest,
  VerifyAnswer,
} from '../gate/context-types.ts'
export type { DecisionLog, SspiCode } from '../gate/decision-log.ts'
// The simple form's parts, in this process's memory.
export { localAuthority } from '../gate/local-authority.ts'
export { memoryBrakes } from '../gate/memory-brakes.ts'
export {
  ContextStoreFullError,
  type MemoryContextsOptions,
  memoryContexts,
} from '../gate/memory-contexts.ts'
export { type DigestAuthResult, digestAuth } from '../gate/middleware.ts'
export {
  DEFAULTS,
  type DigestAuthOptions,
  type LocalUser,
  type LocalUsers,
  type MessageOption,
} from '../gate/options.ts'
