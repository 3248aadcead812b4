/**
 * Where security contexts live. The production store is the SecurityContext Durable Object
 * namespace; the interface lets tests and other runtimes plug in their own.
 */
import type { Principal } from '../authority-protocol/v1.ts'
import type {
  ContextPolicy,
  ContextRequest,
  EstablishAnswer,
  EstablishRequest,
  VerifyAnswer,
} from './context-types.ts'
import type { SecurityContext } from './security-context.ts'
import type { UserContexts } from './user-contexts.ts'
import { userContextsName } from './user-contexts.ts'

export interface ContextStore {
  verify(handle: string, req: ContextRequest, policy: ContextPolicy): Promise<VerifyAnswer>
  /**
   * Cache the principal and session key the authority returned, and record nc. Refused with
   * `revoked` when the user or the handle was revoked after `req.startedAt`.
   */
  establish(handle: string, req: EstablishRequest, policy: ContextPolicy): Promise<EstablishAnswer>
  /** The authority vouched for the user again (revalidation). */
  revalidated(handle: string, principal: Principal, now: number): Promise<void>
  revoke(handle: string, now: number, policy: ContextPolicy): Promise<boolean>
  /** Revoke every context of a user; returns how many live ones were revoked. */
  revokeUser(realm: string, user: string, now: number, policy: ContextPolicy): Promise<number>
}

export function durableObjectContexts(
  contexts: DurableObjectNamespace<SecurityContext>,
  users: DurableObjectNamespace<UserContexts>
): ContextStore {
  return {
    verify: (handle, req, policy) => contexts.getByName(handle).verify(req, policy),
    async establish(handle, req, policy) {
      // The index first: a user revocation that lands meanwhile then either refuses this add, or
      // finds the handle and revokes the context before (or after) it is written.
      const index = users.getByName(userContextsName(req.realm, req.principal.name))
      const indexed = await index.add(handle, req.now + policy.maxLifetime, req.now, req.startedAt)
      if (!indexed) return { kind: 'revoked' }
      const answer = await contexts.getByName(handle).establish(req, policy)
      // Another user's handle must not be revoked with this user.
      if (answer.kind === 'taken') await index.remove(handle)
      return answer
    },
    revalidated: (handle, principal, now) => contexts.getByName(handle).revalidated(principal, now),
    revoke: (handle, now, policy) => contexts.getByName(handle).revoke(now, policy),
    async revokeUser(realm, user, now, policy) {
      const handles = await users.getByName(userContextsName(realm, user)).takeAll(now, Date.now())
      const done = await Promise.all(handles.map((h) => contexts.getByName(h).revoke(now, policy)))
      return done.filter(Boolean).length
    },
  }
}
