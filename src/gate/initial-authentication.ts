/**
 * The authority's part: the initial authentication of a context (the brakes admit it, the
 * authority verifies the response and returns the session key, the context object caches it and
 * records nc in one step), and the periodic revalidation of an established one.
 */
import type { VerifyRequest } from '../authority-protocol/v1.ts'
import { validateVerifyRequest } from '../authority-protocol/validate.ts'
import { hashOf } from '../digest/algorithms.ts'
import { type Attempt, accept, admit, hashBody, settle } from './attempt.ts'
import type { ContextRequest, VerifyAnswer } from './context-types.ts'
import { DEFAULTS } from './options.ts'
import type { ResolvedOptions } from './resolve-options.ts'
import {
  authorityUnavailable,
  bodyTooLarge,
  challengeFor,
  invalidRequest,
  staleFor,
  type Verdict,
} from './verdict.ts'

export async function initialAuthentication(o: ResolvedOptions, a: Attempt): Promise<Verdict> {
  // Protocol v1 is validated apart from the header grammar: whatever the authority would refuse
  // as invalid is the client's error (400), not an outage (503). The body is not hashed yet.
  const placeholder =
    a.request.qop === 'auth-int'
      ? '0'.repeat(hashOf(a.request.algorithm) === 'MD5' ? 32 : 64)
      : undefined
  const valid = validateVerifyRequest(toVerifyRequest(o.serverId, a.request, placeholder))
  if (!valid.ok) {
    return invalidRequest(`unverifiable_${valid.error.field || 'request'}`, valid.error.message)
  }
  const refused = await admit(o, a)
  if (refused) return refused
  let request = a.request
  if (request.qop === 'auth-int') {
    const bodyHash = await hashBody(o, a)
    if (bodyHash === undefined) return bodyTooLarge(o.maxAuthIntBody)
    request = { ...request, bodyHash }
  }
  // Milliseconds: a revocation in the same second as the login must still be ordered.
  const startedAt = Date.now()
  const answer = await a.io.authority.verify(toVerifyRequest(o.serverId, request, request.bodyHash))
  if (answer.result === 'fault') {
    settle(o, a, 'undecided')
    return authorityUnavailable(`authority_${answer.reason}`, DEFAULTS.retryAfterAuthorityFault)
  }
  if (answer.result === 'denied') {
    // Counted when it was admitted: a wrong password, an unknown user, an algorithm the user's
    // store cannot serve — all alike.
    return challengeFor('SEC_E_LOGON_DENIED', `authority_${answer.reason}`)
  }
  if (hashOf(answer.algorithm) !== hashOf(request.algorithm)) {
    settle(o, a, 'undecided')
    return authorityUnavailable('authority_wrong_algorithm', DEFAULTS.retryAfterAuthorityFault)
  }
  settle(o, a, 'succeeded')
  const established = await a.io.contexts.establish(
    a.handle,
    { ...request, principal: answer.principal, sessionKey: answer.sessionKey, startedAt },
    o.policy
  )
  switch (established.kind) {
    case 'ok':
      return accept({ ...a, request }, answer.principal, established.rspauth, 'authority')
    case 'stale':
      return staleFor('SEC_E_CONTEXT_EXPIRED', 'nonce_expired', a.handle)
    case 'replay':
      return staleFor('SEC_E_LOGON_DENIED', 'nc_replay', a.handle)
    case 'taken':
      return challengeFor('SEC_E_INVALID_HANDLE', 'handle_taken')
    case 'revoked':
      return challengeFor('SEC_E_INVALID_HANDLE', 'context_revoked')
  }
}

/**
 * The cached key verified the request (nc recorded) but the authority is due to re-verify the
 * user. Its verdict decides; when it cannot be reached, the session keeps working for
 * REVALIDATE_GRACE past the due time, so an authority outage does not end established sessions.
 */
export async function revalidate(
  o: ResolvedOptions,
  a: Attempt,
  due: Extract<VerifyAnswer, { kind: 'revalidate' }>
): Promise<Verdict> {
  const answer = await a.io.authority.verify(
    toVerifyRequest(o.serverId, a.request, a.request.bodyHash)
  )
  if (answer.result === 'ok' && hashOf(answer.algorithm) === hashOf(a.request.algorithm)) {
    await a.io.contexts.revalidated(a.handle, answer.principal, a.request.now)
    return accept(a, answer.principal, due.rspauth, 'authority')
  }
  if (answer.result === 'denied') {
    // The authority no longer vouches for this context's user: drop the cached key now.
    await a.io.contexts.revoke(a.handle, a.request.now, o.policy)
    return challengeFor('SEC_E_LOGON_DENIED', `authority_${answer.reason}`)
  }
  const reason = answer.result === 'fault' ? answer.reason : 'wrong_algorithm'
  if (a.request.now < due.verifiedAt + o.revalidateAfter + o.revalidateGrace) {
    return accept(a, due.principal, due.rspauth, 'context', `authority_${reason}`)
  }
  return authorityUnavailable(`authority_${reason}`, DEFAULTS.retryAfterAuthorityFault)
}

function toVerifyRequest(
  serverId: string,
  r: ContextRequest,
  bodyHash: string | undefined
): VerifyRequest {
  return {
    version: 1,
    serverId,
    method: r.method,
    directives: {
      username: r.username,
      userhash: r.userhash,
      realm: r.realm,
      nonce: r.nonce,
      uri: r.uri,
      response: r.response,
      algorithm: r.algorithm,
      qop: r.qop,
      nc: r.ncRaw,
      cnonce: r.cnonce,
    },
    bodyHash,
  }
}
