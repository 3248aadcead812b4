/**
 * Authenticating one request, as a verdict: parse and check the credentials, MAC-check nonce and
 * opaque (no I/O), then let the security context decide, or the authority where it cannot.
 */
import { hashOf } from '../digest/algorithms.ts'
import { DigestError } from '../digest/errors.ts'
import { hashStreamHex } from '../digest/hash.ts'
import { parseAuthorization } from '../digest/header.ts'
import type { TokenMinter } from '../digest/tokens.ts'
import type { AlgorithmName, DigestCredentials } from '../digest/types.ts'
import { precheck, responseMatches, rspauthFor } from './context-check.ts'
import type { ContextRequest, VerifyOutcome } from './context-types.ts'
import type { Trace } from './decision-log.ts'
import { initialAuthentication } from './initial-authentication.ts'
import type { IsolateContextCache } from './isolate-cache.ts'
import type { ResolvedOptions } from './resolve-options.ts'
import { uriMatchesTarget } from './uri-match.ts'
import { challengeFor, invalidRequest, staleFor, type Verdict } from './verdict.ts'

/** The request as authentication sees it. */
export interface Incoming {
  method: string
  url: URL
  authorization: string | undefined
  /** A fresh copy of the body, for auth-int. */
  body: () => ReadableStream<Uint8Array> | null
  clientIp: string
  /** clientBucket() of the client: where the brakes count its attempts. */
  bucket: string
  now: number
  /** Keep background work (failure counting) alive past the response. */
  waitUntil: (p: Promise<unknown>) => void
}

export interface Workspace {
  minter: TokenMinter
  isolateCache: IsolateContextCache
  /** Authority calls in flight per context handle, in this isolate. */
  inflight: Map<string, Promise<Verdict>>
  trace: Trace
}

export async function authenticate(
  o: ResolvedOptions,
  req: Incoming,
  w: Workspace
): Promise<Verdict> {
  const header = req.authorization
  if (!header || !/^\s*digest(\s|$)/i.test(header)) {
    return challengeFor('SEC_I_CONTINUE_NEEDED', header ? 'other_scheme' : 'no_credentials')
  }
  let creds: DigestCredentials
  try {
    creds = parseAuthorization(header)
  } catch (err) {
    if (err instanceof DigestError) return invalidRequest(`malformed_${err.code}`, err.message)
    throw err
  }
  const algorithm: AlgorithmName = creds.algorithm ?? 'MD5'
  w.trace.user = creds.username
  w.trace.algorithm = algorithm
  const refused = checkOffer(o, creds, algorithm, req.url)
  if (refused) return refused

  // Nonce and opaque are MAC-checked before any storage or authority I/O.
  const nonce = await w.minter.verifyNonce(creds.nonce, {
    serverId: o.serverId,
    now: req.now,
    lifetimeSeconds: o.nonceLifetime,
  })
  if (!nonce.ok) return challengeFor('SEC_E_INVALID_HANDLE', `nonce_${nonce.reason}`)
  if (creds.opaque !== undefined) {
    const opaque = await w.minter.verifyOpaque(creds.opaque)
    if (!opaque.ok) return challengeFor('SEC_E_INVALID_HANDLE', `opaque_${opaque.reason}`)
    if (opaque.handle !== nonce.handle) {
      return challengeFor('SEC_E_INVALID_HANDLE', 'opaque_nonce_mismatch')
    }
  }
  // The nonce names the context, so clients that drop the opaque still find theirs.
  const handle = nonce.handle

  const request: ContextRequest = {
    username: creds.username,
    userhash: creds.userhash,
    realm: creds.realm,
    algorithm,
    nonce: creds.nonce,
    nonceIssuedAt: nonce.issuedAt,
    nonceExpired: nonce.expired,
    uri: creds.uri,
    method: req.method,
    response: creds.response,
    qop: creds.qop,
    nc: creds.nc,
    ncRaw: creds.ncRaw,
    cnonce: creds.cnonce,
    bodyHash:
      creds.qop === 'auth-int' ? await hashStreamHex(hashOf(algorithm), req.body()) : undefined,
    now: req.now,
    clientIp: req.clientIp,
  }
  const recordFailure = () => {
    if (!o.brakes) return
    const attempt = { bucket: req.bucket, realm: o.realm, user: creds.username, now: req.now }
    req.waitUntil(o.brakes.store.recordFailure(attempt, o.brakePolicy).catch(() => {}))
  }

  /** The context's answer as a verdict, where it could decide. */
  const fromContext = (outcome: Decided): Verdict => {
    switch (outcome.outcome) {
      case 'ok':
        return {
          kind: 'accept',
          principal: outcome.principal,
          rspauth: outcome.rspauth,
          verifiedBy: 'context',
          handle,
          algorithm,
          credentials: creds,
          nonceAgeSeconds: nonce.ageSeconds,
        }
      case 'stale':
        return staleFor('SEC_E_CONTEXT_EXPIRED', 'nonce_expired', handle)
      case 'replay':
        return staleFor('SEC_E_LOGON_DENIED', 'nc_replay', handle)
      case 'revoked':
        return challengeFor('SEC_E_INVALID_HANDLE', 'context_revoked')
      case 'locked':
      case 'mismatch':
        recordFailure()
        return challengeFor(
          'SEC_E_LOGON_DENIED',
          outcome.outcome === 'locked' ? 'context_locked' : 'response_mismatch'
        )
    }
  }

  let cached = await verifyWithContext(o, handle, request, w)
  if (cached.outcome !== 'ask_authority') return fromContext(cached)

  // Parallel first requests of one context (a page and its assets) wait for the first one's
  // authority call, then verify at the edge, instead of each asking the authority.
  const inflight = w.inflight.get(handle)
  if (inflight) {
    await inflight.catch(() => {})
    cached = await verifyWithContext(o, handle, request, w)
    if (cached.outcome !== 'ask_authority') return fromContext(cached)
  }
  const attempt = initialAuthentication(o, {
    handle,
    request,
    bucket: req.bucket,
    trace: w.trace,
    waitUntil: req.waitUntil,
    reason: cached.reason,
    nonceAgeSeconds: nonce.ageSeconds,
    credentials: creds,
  })
  if (!inflight) {
    w.inflight.set(handle, attempt)
    attempt.finally(() => w.inflight.delete(handle)).catch(() => {})
  }
  return attempt
}

/** Outcomes the context object decides by itself (all but asking the authority). */
type Decided = Exclude<VerifyOutcome, { outcome: 'ask_authority' }>

/** What was offered must be what is answered; the uri must name the request target. */
function checkOffer(
  o: ResolvedOptions,
  creds: DigestCredentials,
  algorithm: AlgorithmName,
  url: URL
): Verdict | undefined {
  if (creds.realm !== o.realm) return challengeFor('SEC_E_LOGON_DENIED', 'realm_mismatch')
  if (!o.algorithms.includes(algorithm)) {
    return challengeFor('SEC_E_LOGON_DENIED', 'algorithm_not_offered')
  }
  if (creds.qop ? !o.qop.includes(creds.qop) : o.qop.length > 0) {
    return challengeFor('SEC_E_LOGON_DENIED', 'qop_not_offered')
  }
  if (creds.userhash && !o.userhash)
    return challengeFor('SEC_E_LOGON_DENIED', 'userhash_not_offered')
  if (o.validateUri && !uriMatchesTarget(creds.uri, url)) {
    return invalidRequest('uri_mismatch', 'the uri directive does not match the request target')
  }
  return undefined
}

/** One Durable Object call; in replay mode `off`, none once the isolate cache is warm. */
async function verifyWithContext(
  o: ResolvedOptions,
  handle: string,
  request: ContextRequest,
  w: Workspace
): Promise<VerifyOutcome> {
  if (o.replay === 'off') {
    const local = await verifyFromIsolate(w.isolateCache, handle, request)
    if (local) return local
  }
  w.trace.contextCalls++
  const outcome = await o.contexts.verify(handle, request, o.policy)
  if (outcome.outcome === 'ok' && outcome.cached) {
    w.isolateCache.put(handle, outcome.cached, request.now, o.revalidateAfter)
  } else {
    w.isolateCache.delete(handle)
  }
  return outcome
}

/**
 * Verify from the isolate cache with no storage call. Undefined = not cached or not decidable
 * here (the Durable Object then decides, and counts failures).
 */
async function verifyFromIsolate(
  cache: IsolateContextCache,
  handle: string,
  req: ContextRequest
): Promise<VerifyOutcome | undefined> {
  const row = cache.get(handle, req.now)
  if (!row || precheck(row, req) || !(await responseMatches(row, req))) return undefined
  if (req.nonceExpired) return { outcome: 'stale' }
  return { outcome: 'ok', principal: row.principal, rspauth: await rspauthFor(row, req) }
}
