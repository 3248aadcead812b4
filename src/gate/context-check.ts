/**
 * The judgement of a request against a cached security context, shared by the Durable Object
 * (every mode) and the isolate cache (replay mode `off`), so both decide alike.
 */
import type { Principal } from '../authority-protocol/v1.ts'
import {
  computeResponse,
  computeRspauth,
  hashOf,
  type ResponseInput,
  timingSafeEqualString,
} from '../digest/algorithms.ts'
import type { AlgorithmName } from '../digest/types.ts'
import type { ContextRequest, VerifyOutcome } from './context-types.ts'

export interface CachedContext {
  username: string
  userhash: boolean
  realm: string
  principal: Principal
  algorithm: AlgorithmName
  sessionKey: string
  created: number
  lastUsed: number
  verifiedAt: number
  expires: number
  idleTimeout: number
  revoked: boolean
}

/** Outcomes decided before any hashing; undefined = go on and check the response. */
export function precheck(row: CachedContext, req: ContextRequest): VerifyOutcome | undefined {
  if (row.revoked) return { outcome: 'revoked' }
  if (req.now >= row.expires || req.now >= row.lastUsed + row.idleTimeout) {
    return { outcome: 'ask_authority', reason: 'expired' }
  }
  if (
    row.username !== req.username ||
    row.userhash !== req.userhash ||
    row.realm !== req.realm ||
    hashOf(row.algorithm) !== hashOf(req.algorithm)
  ) {
    return { outcome: 'ask_authority', reason: 'other_user' }
  }
  return undefined
}

export async function responseMatches(row: CachedContext, req: ContextRequest): Promise<boolean> {
  const expected = await computeResponse({ ...responseInput(req), ha1: row.sessionKey })
  return timingSafeEqualString(expected, req.response.toLowerCase())
}

export function rspauthFor(row: CachedContext, req: ContextRequest): string {
  return computeRspauth({ ...responseInput(req), ha1: row.sessionKey })
}

function responseInput(req: ContextRequest): Omit<ResponseInput, 'ha1'> {
  return {
    algorithm: req.algorithm,
    nonce: req.nonce,
    nc: req.ncRaw,
    cnonce: req.cnonce,
    qop: req.qop,
    method: req.method,
    uri: req.uri,
    bodyHash: req.bodyHash,
  }
}
