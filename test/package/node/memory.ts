/**
 * TODO(simple form): stand-ins for the in-memory authority and context store the package does not
 * offer yet. Once `digestAuth({ realm, users })` lands, main.ts uses it and this file goes.
 *
 * Test stand-ins only: contexts never expire, nothing is braked.
 */
import type {
  AuthorityClient,
  ContextRequest,
  ContextStore,
  Principal,
  VerifyAnswer,
} from 'digest-gate'
import {
  type AlgorithmName,
  baseHA1,
  computeResponse,
  computeRspauth,
  hashOf,
  type ResponseInput,
  timingSafeEqualString,
} from 'digest-gate/core'

/** Verifies initial authentications against plain-text passwords of one realm. */
export function memoryAuthority(realm: string, passwords: Record<string, string>): AuthorityClient {
  return {
    async verify({ method, directives: d, bodyHash }) {
      const algorithm = d.algorithm ?? 'MD5'
      const known = d.realm === realm && !d.userhash && Object.hasOwn(passwords, d.username)
      const password = known ? passwords[d.username] : undefined
      if (password === undefined) return { result: 'denied', reason: 'logon_denied' }
      const sessionKey = baseHA1(hashOf(algorithm), d.username, d.realm, password)
      const expected = computeResponse({
        algorithm,
        ha1: sessionKey,
        nonce: d.nonce,
        nc: d.nc,
        cnonce: d.cnonce,
        qop: d.qop,
        method,
        uri: d.uri,
        bodyHash,
      })
      if (!timingSafeEqualString(expected, d.response.toLowerCase())) {
        return { result: 'denied', reason: 'logon_denied' }
      }
      return { result: 'ok', principal: { name: d.username, groups: [] }, sessionKey, algorithm }
    },
  }
}

interface Context {
  username: string
  realm: string
  algorithm: AlgorithmName
  principal: Principal
  sessionKey: string
  /** nonce and nc of every request accepted: each is accepted once. */
  seen: Set<string>
}

/** Security contexts in a Map: one process, no expiry. */
export function memoryContexts(): ContextStore {
  const contexts = new Map<string, Context>()
  const input = (req: ContextRequest, ha1: string): Omit<ResponseInput, 'method'> => ({
    algorithm: req.algorithm,
    ha1,
    nonce: req.nonce,
    nc: req.ncRaw,
    cnonce: req.cnonce,
    qop: req.qop,
    uri: req.uri,
    bodyHash: req.bodyHash,
  })
  const firstUse = (ctx: Context, req: ContextRequest): boolean => {
    const key = `${req.nonce}:${req.nc ?? 0}`
    if (ctx.seen.has(key)) return false
    ctx.seen.add(key)
    return true
  }
  return {
    async verify(handle, req): Promise<VerifyAnswer> {
      const ctx = contexts.get(handle)
      if (!ctx) return { kind: 'ask_authority', reason: 'no_context' }
      if (
        ctx.username !== req.username ||
        ctx.realm !== req.realm ||
        hashOf(ctx.algorithm) !== hashOf(req.algorithm)
      ) {
        return { kind: 'ask_authority', reason: 'other_user' }
      }
      if (req.qop === 'auth-int' && req.bodyHash === undefined) return { kind: 'need_body' }
      const expected = computeResponse({ ...input(req, ctx.sessionKey), method: req.method })
      if (!timingSafeEqualString(expected, req.response.toLowerCase())) return { kind: 'mismatch' }
      if (req.nonceExpired) return { kind: 'stale' }
      if (!firstUse(ctx, req)) return { kind: 'replay', verified: true }
      return {
        kind: 'ok',
        principal: ctx.principal,
        rspauth: computeRspauth(input(req, ctx.sessionKey)),
      }
    },
    async establish(handle, req) {
      const prior = contexts.get(handle)
      if (prior && prior.principal.name !== req.principal.name) return { kind: 'taken' }
      const ctx: Context = {
        username: req.username,
        realm: req.realm,
        algorithm: req.algorithm,
        principal: req.principal,
        sessionKey: req.sessionKey,
        seen: prior?.seen ?? new Set(),
      }
      if (!req.nonceExpired && !firstUse(ctx, req)) return { kind: 'replay' }
      contexts.set(handle, ctx)
      if (req.nonceExpired) return { kind: 'stale' }
      return { kind: 'ok', rspauth: computeRspauth(input(req, req.sessionKey)) }
    },
    async revalidated(handle, principal) {
      const ctx = contexts.get(handle)
      if (ctx?.principal.name === principal.name) ctx.principal = principal
    },
    async revoke(handle) {
      return contexts.delete(handle)
    },
    async revokeUser(realm, user) {
      let revoked = 0
      for (const [handle, ctx] of contexts) {
        if (ctx.realm === realm && ctx.principal.name === user && contexts.delete(handle)) revoked++
      }
      return revoked
    },
  }
}
