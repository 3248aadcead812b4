/**
 * `digest-gate/cloudflare`: the Durable Object classes and the stores backed by them, for state
 * shared by every isolate and location. A subpath of its own because the classes import
 * `cloudflare:workers`, which only workerd can load; the main entry stays loadable in Node, Bun
 * and Deno. A Worker exports the classes from its main module and binds them in its wrangler
 * configuration (README, "Use the middleware").
 */
export { Brake } from '../gate/brake.ts'
export { durableObjectBrakes } from '../gate/brake-store.ts'
export { durableObjectContexts, SecurityContext } from '../gate/security-context.ts'
export { UserContexts } from '../gate/user-contexts.ts'
