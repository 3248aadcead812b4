/**
 * `digest-gate`: Digest authentication (RFC 7616) as Hono middleware, and the interfaces of what
 * it plugs into. Loads in any runtime (Node, Bun, Deno, workerd): nothing imported here reaches
 * `cloudflare:workers`, so the Durable Object classes and their stores live in
 * `digest-gate/cloudflare`.
 */
export { type DigestAuthResult, type DigestAuthVariables, digestAuth } from '../gate/middleware.ts'
export type { BrakeAttempt, BrakeStore, DigestAuthOptions, MessageOption } from '../gate/options.ts'

// TODO(simple form): re-export the in-memory stores and the `users` option's types once they land.

export type {
  Principal,
  VerifyRequest,
  VerifyResponse,
  WireDirectives,
} from '../authority-protocol/v1.ts'
export type { ReplayMode } from '../digest/nc-window.ts'
export type { TokenKey, TokenKeys } from '../digest/tokens.ts'
export type { AlgorithmName, Qop } from '../digest/types.ts'
// The authority (the domain controller): the HTTP client of protocol v1, or one's own.
export {
  type AuthorityAnswer,
  type AuthorityClient,
  type HttpAuthorityOptions,
  httpAuthority,
} from '../gate/authority-client.ts'
export {
  type BrakePolicy,
  type BrakeReason,
  type BrakeVerdict,
  DEFAULT_BRAKE_POLICY,
} from '../gate/brake-policy.ts'
// What the stores are given and answer: enough to write one's own.
export type { ContextStore } from '../gate/context-store.ts'
export type {
  Binding,
  CachedContext,
  ContextPolicy,
  ContextRequest,
  EstablishAnswer,
  EstablishRequest,
  VerifyAnswer,
} from '../gate/context-types.ts'
// Types the options name.
export type { DecisionLog, SspiCode } from '../gate/decision-log.ts'
