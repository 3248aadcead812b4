/**
 * digest-gate's middleware for any Hono app on any runtime: digestAuth(), the stores it can use,
 * the authority client. The Durable Object classes and the stores backed by them need a Workers
 * runtime: they are in ./cloudflare.ts.
 */
export type { Principal } from '../authority-protocol/v1.ts'
export {
  type AuthorityAnswer,
  type AuthorityClient,
  type HttpAuthorityOptions,
  httpAuthority,
} from './authority-client.ts'
export {
  type BrakeAttempt,
  type BrakePolicy,
  type BrakeStore,
  type BrakeVerdict,
  DEFAULT_BRAKE_POLICY,
} from './brake-policy.ts'
export type { Binding, ContextStore } from './context-types.ts'
export type { DecisionLog } from './decision-log.ts'
export { localAuthority } from './local-authority.ts'
export { memoryBrakes } from './memory-brakes.ts'
export {
  ContextStoreFullError,
  type MemoryContextsOptions,
  memoryContexts,
} from './memory-contexts.ts'
export { type DigestAuthResult, digestAuth } from './middleware.ts'
export {
  DEFAULTS,
  type DigestAuthOptions,
  type LocalUser,
  type LocalUsers,
  type MessageOption,
} from './options.ts'
