/**
 * The judgement of a request against a cached security context, shared by the Durable Object
 * (every mode) and the isolate cache (replay mode `off`), so both decide alike. Synchronous: the
 * Durable Object runs it between reading and writing its state with no await in between.
 */
import {
  computeResponse,
  computeRspauth,
  hashOf,
  type ResponseInput,
  timingSafeEqualString,
} from '../digest/algorithms.ts'
import type { CachedContext, ContextRequest, VerifyAnswer } from './context-types.ts'

/** Has the session run out (absolute lifetime or idle timeout)? */
export function hasRunOut(row: CachedContext, now: number): boolean {
  return now >= row.expires || now >= row.lastUsed + row.idleTimeout
}

/**
 * Outcomes decided before any hashing; undefined = the cached key may verify this request.
 * The caller has checked that the context exists and has not ended.
 */
export function precheck(row: CachedContext, req: ContextRequest): VerifyAnswer | undefined {
  if (row.revoked) return { kind: 'revoked' }
  // Channel binding is checked before the key is used: a request from another channel is never
  // verified from the cached key, right password or not.
  if (row.binding !== undefined && req.binding !== row.binding) return { kind: 'bad_bindings' }
  if (hasRunOut(row, req.now)) return { kind: 'ask_authority', reason: 'expired' }
  if (
    row.username !== req.username ||
    row.userhash !== req.userhash ||
    row.realm !== req.realm ||
    hashOf(row.algorithm) !== hashOf(req.algorithm)
  ) {
    return { kind: 'ask_authority', reason: 'other_user' }
  }
  return undefined
}

export function responseMatches(row: CachedContext, req: ContextRequest): boolean {
  const expected = computeResponse({ ...responseInput(req), ha1: row.sessionKey })
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
