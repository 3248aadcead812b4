/**
 * Initial authentication (or a fallback when the cached key cannot decide): the brakes admit it,
 * the authority verifies the response and returns the session key, and the context object caches
 * it and records nc in one step.
 *
 * The brakes count the attempt as a failure when they admit it, so parallel guesses cannot all
 * pass; only an answer from the authority takes it back (a verified success, or a fault that
 * decided nothing). A revalidation is not admitted: the cached key has verified its response
 * already, so it is no guess, and a guesser elsewhere must not slow down an established session.
 */
import type { VerifyRequest } from '../authority-protocol/v1.ts'
import { validateVerifyRequest } from '../authority-protocol/validate.ts'
import { hashOf } from '../digest/algorithms.ts'
import type { BrakeVerdict } from './brake-policy.ts'
import type { ContextRequest, VerifyOutcome } from './context-types.ts'
import type { Trace } from './decision-log.ts'
import { type BrakeAttempt, DEFAULTS } from './options.ts'
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
  /** clientBucket() of the client: where the brakes count the attempt. */
  bucket: string
  trace: Trace
  /** Keep background work (settling the brakes) alive past the response. */
  waitUntil: (p: Promise<unknown>) => void
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
  const brakes = o.brakes && a.reason !== 'revalidate' ? o.brakes.store : undefined
  const counted: BrakeAttempt = {
    bucket: a.bucket,
    realm: o.realm,
    user: request.username,
    now: request.now,
  }
  if (brakes) {
    // The bucket's object and the user's.
    trace.contextCalls += 2
    let verdict: BrakeVerdict
    try {
      verdict = await brakes.admit(counted, o.brakePolicy)
    } catch {
      // Unbraked guessing is worse than a short outage of new logins.
      return authorityUnavailable('brakes_unavailable', DEFAULTS.retryAfterAuthorityFault)
    }
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
  const settle = (how: 'succeeded' | 'undecided') => {
    if (brakes) a.waitUntil(brakes[how](counted, o.brakePolicy).catch(() => {}))
  }
  trace.authorityCalled = true
  const answer = await o.authority.verify(verifyRequest)
  if (answer.result === 'fault') {
    // Nothing was decided, so the client learnt nothing: no guess to count.
    settle('undecided')
    return authorityUnavailable(`authority_${answer.reason}`, DEFAULTS.retryAfterAuthorityFault)
  }
  if (answer.result === 'denied') {
    if (a.reason === 'revalidate' || a.reason === 'expired') {
      // The authority no longer vouches for this context's user: drop the cached key now.
      trace.contextCalls++
      await o.contexts.revoke(handle)
    }
    // Every denial (wrong password, unknown user, unsupported algorithm) keeps its count.
    return challengeFor('SEC_E_LOGON_DENIED', `authority_${answer.reason}`)
  }
  if (hashOf(answer.algorithm) !== hashOf(request.algorithm)) {
    return authorityUnavailable('authority_wrong_algorithm', DEFAULTS.retryAfterAuthorityFault)
  }
  settle('succeeded')
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
