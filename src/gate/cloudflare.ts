/**
 * The Durable Object classes and the stores backed by them: what a Worker adds for state shared
 * by every isolate and location. Importing this module needs a Workers runtime
 * (`cloudflare:workers`); everything else is in ./index.ts.
 */
export { Brake } from './brake.ts'
export { durableObjectBrakes } from './brake-store.ts'
export { durableObjectContexts, SecurityContext } from './security-context.ts'
export { UserContexts } from './user-contexts.ts'
