/**
 * What authenticating one request concludes, before it becomes HTTP: an acceptance, or a refusal
 * mapped from the outcomes of the Microsoft Digest SSP (docs/architecture.md, "Outcomes").
 */
import type { Principal } from '../authority-protocol/v1.ts'
import type { AlgorithmName, DigestCredentials } from '../digest/types.ts'
import type { SspiCode } from './decision-log.ts'

export interface Acceptance {
  kind: 'accept'
  principal: Principal
  rspauth: string
  verifiedBy: 'authority' | 'context'
  handle: string
  algorithm: AlgorithmName
  credentials: DigestCredentials
  nonceAgeSeconds: number
  /** Accepted although the authority could not revalidate the user (REVALIDATE_GRACE): why. */
  deferred?: string
}

/** What a refusal may tell the decision log beyond its reason. */
interface RefusalFacts {
  /** The algorithm the client answered with, once its credentials parsed. */
  algorithm?: AlgorithmName
  /** The user, only once a response verified: an unverified name may be a mistyped password. */
  user?: string
}

/** 401 with fresh challenges; with `staleHandle`, stale=true on the client's own context. */
export interface ChallengeRefusal extends RefusalFacts {
  kind: 'challenge'
  code: SspiCode
  reason: string
  staleHandle?: string
}

export interface ErrorRefusal extends RefusalFacts {
  kind: 'error'
  status: 400 | 413 | 429 | 503
  code: SspiCode
  reason: string
  message: string
  retryAfter?: number
}

export type Verdict = Acceptance | ChallengeRefusal | ErrorRefusal

export const challengeFor = (code: SspiCode, reason: string): ChallengeRefusal => ({
  kind: 'challenge',
  code,
  reason,
})

/** The response proved valid but its nonce or nc cannot be used: retry silently (stale=true). */
export const staleFor = (code: SspiCode, reason: string, handle: string): ChallengeRefusal => ({
  kind: 'challenge',
  code,
  reason,
  staleHandle: handle,
})

export const invalidRequest = (reason: string, message: string): ErrorRefusal => ({
  kind: 'error',
  status: 400,
  code: 'SEC_E_INVALID_TOKEN',
  reason,
  message,
})

export const authorityUnavailable = (reason: string, retryAfter: number): ErrorRefusal => ({
  kind: 'error',
  status: 503,
  code: 'SEC_E_NO_AUTHENTICATING_AUTHORITY',
  reason,
  message: 'the authentication authority is unavailable: retry later',
  retryAfter,
})

export const rateLimited = (brake: { retryAfter: number; reason: string }): ErrorRefusal => ({
  kind: 'error',
  status: 429,
  code: 'SEC_E_RATE_LIMITED',
  reason: brake.reason,
  message: 'too many failed attempts: retry later',
  retryAfter: brake.retryAfter,
})

export const bodyTooLarge = (limit: number): ErrorRefusal => ({
  kind: 'error',
  status: 413,
  code: 'SEC_E_INVALID_TOKEN',
  reason: 'auth_int_body_too_large',
  message: `auth-int bodies are verified up to ${limit} bytes`,
})
