/**
 * Initial authentication (or a fallback when the cached key cannot decide): the brakes admit it,
 * the authority verifies the response and returns the session key, and the context object caches
 * it and records nc in one step.
 */
import type { VerifyRequest } from '../authority-protocol/v1.ts'
import { validateVerifyRequest } from '../authority-protocol/validate.ts'
import { hashOf } from '../digest/algorithms.ts'
import type { ContextRequest, VerifyOutcome } from './context-types.ts'
import type { Trace } from './decision-log.ts'
import { DEFAULTS } from './options.ts'
import type { ResolvedOptions } from './resolve-options.ts'
import {
  type Acceptance,
  authorityUnavailable,
  challengeFor,
  invalidRequest,
  staleFor,
  type Verdict,
} from './verdict.ts'

export interface Attempt {
  handle: string
  request: ContextRequest
  clientIp: string
  trace: Trace
  /** Count a real mismatch against the brakes (never awaited on the answer path). */
  recordFailure: () => void
  /** Why the context could not decide. */
  reason: Extract<VerifyOutcome, { outcome: 'ask_authority' }>['reason']
  nonceAgeSeconds: number
  credentials: Acceptance['credentials']
}

export async function initialAuthentication(o: ResolvedOptions, a: Attempt): Promise<Verdict> {
  const { request, handle, trace } = a
  // Protocol v1 is validated apart from the header grammar: whatever the authority would refuse
  // as invalid is the client's error (400), not an outage (503).
  const verifyRequest = toVerifyRequest(o.serverId, request)
  const valid = validateVerifyRequest(verifyRequest)
  if (!valid.ok) {
    return invalidRequest(`unverifiable_${valid.error.field || 'request'}`, valid.error.message)
  }
  if (o.brakes) {
    trace.contextCalls++
    const verdict = await o.brakes.store.admit(
      a.clientIp,
      request.username,
      request.now,
      o.brakePolicy
    )
    if (!verdict.ok) {
      return {
        kind: 'error',
        status: 429,
        code: 'SEC_E_RATE_LIMITED',
        reason: verdict.reason,
        message: 'too many failed attempts: retry later',
        retryAfter: verdict.retryAfter,
      }
    }
  }
  trace.authorityCalled = true
  const answer = await o.authority.verify(verifyRequest)
  if (answer.result === 'fault') {
    return authorityUnavailable(`authority_${answer.reason}`, DEFAULTS.retryAfterAuthorityFault)
  }
  if (answer.result === 'denied') {
    if (a.reason === 'revalidate' || a.reason === 'expired') {
      // The authority no longer vouches for this context's user: drop the cached key now.
      trace.contextCalls++
      await o.contexts.revoke(handle)
    }
    if (answer.reason === 'logon_denied') a.recordFailure()
    return challengeFor('SEC_E_LOGON_DENIED', `authority_${answer.reason}`)
  }
  if (hashOf(answer.algorithm) !== hashOf(request.algorithm)) {
    return authorityUnavailable('authority_wrong_algorithm', DEFAULTS.retryAfterAuthorityFault)
  }
  // The context object, and the user's index of contexts.
  trace.contextCalls += 2
  const established = await o.contexts.establish(
    handle,
    { ...request, principal: answer.principal, sessionKey: answer.sessionKey },
    o.policy
  )
  if (established.outcome === 'stale') {
    return staleFor('SEC_E_CONTEXT_EXPIRED', 'nonce_expired', handle)
  }
  if (established.outcome === 'replay') return staleFor('SEC_E_LOGON_DENIED', 'nc_replay', handle)
  return {
    kind: 'accept',
    principal: answer.principal,
    rspauth: established.rspauth,
    verifiedBy: 'authority',
    handle,
    algorithm: request.algorithm,
    credentials: a.credentials,
    nonceAgeSeconds: a.nonceAgeSeconds,
  }
}

function toVerifyRequest(serverId: string, r: ContextRequest): VerifyRequest {
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
    bodyHash: r.bodyHash,
  }
}
