/**
 * Where security contexts live. The production store is the SecurityContext Durable Object
 * namespace; the interface lets tests and other runtimes plug in their own.
 */
import type {
  ContextPolicy,
  ContextRequest,
  EstablishOutcome,
  EstablishRequest,
  VerifyOutcome,
} from './context-types.ts'
import type { SecurityContext } from './security-context.ts'
import type { UserContexts } from './user-contexts.ts'
import { userContextsName } from './user-contexts.ts'

export interface ContextStore {
  verify(handle: string, req: ContextRequest, policy: ContextPolicy): Promise<VerifyOutcome>
  establish(handle: string, req: EstablishRequest, policy: ContextPolicy): Promise<EstablishOutcome>
  revoke(handle: string): Promise<boolean>
  /** Revoke every context of a user; returns how many were revoked. */
  revokeUser(realm: string, user: string, now: number): Promise<number>
}

export function durableObjectContexts(
  contexts: DurableObjectNamespace<SecurityContext>,
  users: DurableObjectNamespace<UserContexts>
): ContextStore {
  return {
    verify: (handle, req, policy) => contexts.getByName(handle).verify(req, policy),
    async establish(handle, req, policy) {
      const [answer] = await Promise.all([
        contexts.getByName(handle).establish(req, policy),
        users
          .getByName(userContextsName(req.realm, req.principal.name))
          .add(handle, req.now + policy.maxLifetime, req.now),
      ])
      return answer
    },
    revoke: (handle) => contexts.getByName(handle).revoke(),
    async revokeUser(realm, user, now) {
      const handles = await users.getByName(userContextsName(realm, user)).takeAll(now)
      const done = await Promise.all(handles.map((h) => contexts.getByName(h).revoke()))
      return done.filter(Boolean).length
    },
  }
}
