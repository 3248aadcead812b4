/**
 * digestAuth(): the originating server of the Microsoft Digest model as Hono middleware.
 *
 * No usable credentials -> 401 challenge. Initial authentication -> the authority verifies and
 * returns the session key, cached in the context's Durable Object. Later requests -> that object
 * alone verifies them. Failures are thrown as HTTPException carrying WWW-Authenticate, like
 * Hono's basicAuth / bearerAuth.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Principal, VerifyRequest } from '../authority-protocol/v1.ts'
import { hashOf } from '../digest/algorithms.ts'
import { DigestError } from '../digest/errors.ts'
import { hashStreamHex } from '../digest/hash.ts'
import { formatAuthenticationInfo, parseAuthorization } from '../digest/header.ts'
import {
  type ContextHandle,
  createTokenMinter,
  newContextHandle,
  type TokenKeys,
  type TokenMinter,
} from '../digest/tokens.ts'
import type { AlgorithmName, DigestCredentials } from '../digest/types.ts'
import { type BrakePolicy, DEFAULT_BRAKE_POLICY } from './brake.ts'
import { type ChallengeSettings, challengeValues } from './challenge.ts'
import { precheck, responseMatches, rspauthFor } from './context-check.ts'
import type { ContextPolicy, ContextRequest, VerifyOutcome } from './context-types.ts'
import { type DecisionLog, logDecision, type SspiCode } from './decision-log.ts'
import { IsolateContextCache } from './isolate-cache.ts'
import { DEFAULTS, type DigestAuthOptions, type MessageOption } from './options.ts'
import { uriMatchesTarget } from './uri-match.ts'

export interface DigestAuthResult {
  principal: Principal
  /** The security context's handle (the opaque names it). */
  contextHandle: string
  algorithm: AlgorithmName
  /** 'authority': initial authentication; 'context': verified at the edge from the cached key. */
  verifiedBy: 'authority' | 'context'
}

export type DigestAuthVariables = { digestAuth: DigestAuthResult }

/** Token minters hold imported HMAC keys: one per key set per isolate. */
const minters = new Map<string, Promise<TokenMinter>>()

function minterFor(keys: TokenKeys): Promise<TokenMinter> {
  const id = JSON.stringify(keys)
  let m = minters.get(id)
  if (!m) {
    m = createTokenMinter(keys)
    m.catch(() => minters.delete(id))
    minters.set(id, m)
  }
  return m
}

/** What one request's handling has found out so far, for the decision log. */
interface Trace {
  started: number
  user?: string
  algorithm?: string
  authorityCalled: boolean
  contextCalls: number
}

/**
 * @param options.realm - the protection space; must match the client's `realm`.
 * @param options.authority - who verifies initial authentications (httpAuthority()).
 * @param options.contexts - where security contexts live (durableObjectContexts()).
 * @example
 * app.use('/private/*', digestAuth({ realm: 'api', serverId: 'gate-1', nonceKeys, authority, contexts }))
 * app.get('/private/me', (c) => c.json(c.var.digestAuth.principal))
 */
export function digestAuth<
  E extends { Variables: DigestAuthVariables } = { Variables: DigestAuthVariables },
>(options: DigestAuthOptions): MiddlewareHandler<E> {
  const o = resolveOptions(options)
  const settings: ChallengeSettings = {
    realm: o.realm,
    serverId: o.serverId,
    algorithms: o.algorithms,
    qop: o.qop,
    userhash: o.userhash,
  }
  const policy: ContextPolicy = {
    replay: o.replay,
    windowSize: o.windowSize,
    nonceLifetime: o.nonceLifetime,
    idleTimeout: o.idleTimeout,
    maxLifetime: o.maxLifetime,
    revalidateAfter: o.revalidateAfter,
    maxFailures: DEFAULTS.maxContextFailures,
  }
  const brakePolicy: BrakePolicy = {
    ...DEFAULT_BRAKE_POLICY,
    ...(o.brakes ? o.brakes.policy : {}),
  }
  const isolateCache = new IsolateContextCache()
  const clientIp =
    o.clientIp ??
    ((c: Context) => c.req.header('cf-connecting-ip') ?? c.req.header('x-real-ip') ?? 'unknown')

  return async function digestAuth(c, next) {
    const now = Math.floor(Date.now() / 1000)
    const trace: Trace = { started: Date.now(), authorityCalled: false, contextCalls: 0 }
    const minter = await minterFor(o.nonceKeys)

    const log = (code: SspiCode, status: number, outcome: string, reason?: string) => {
      const entry: DecisionLog = {
        event: 'digest-gate.decision',
        outcome,
        code,
        status,
        method: c.req.method,
        path: new URL(c.req.url).pathname,
        user: trace.user,
        reason,
        algorithm: trace.algorithm,
        authorityCalled: trace.authorityCalled,
        contextCalls: trace.contextCalls,
        latencyMs: Date.now() - trace.started,
      }
      o.onDecision(entry)
    }

    /** 401 with challenges; `handle` keeps the client's context (stale), else a new one. */
    const challenge = async (
      code: SspiCode,
      outcome: string,
      reason: string,
      opts: { stale?: boolean; handle?: ContextHandle } = {}
    ): Promise<never> => {
      const values = await challengeValues(
        settings,
        minter,
        opts.handle ?? newContextHandle(),
        now,
        opts.stale ?? false
      )
      const res = await messageResponse(c, 401, o.unauthorizedMessage, {
        error: 'unauthorized',
        message: opts.stale
          ? 'nonce is stale: retry with the new nonce'
          : 'authentication required',
      })
      for (const v of values) res.headers.append('WWW-Authenticate', v)
      log(code, 401, outcome, reason)
      throw new HTTPException(401, { res })
    }

    const fail = async (
      status: 400 | 429 | 503,
      code: SspiCode,
      reason: string,
      message: string,
      retryAfter?: number
    ): Promise<never> => {
      const res = await messageResponse(
        c,
        status,
        status === 400 ? o.invalidRequestMessage : undefined,
        {
          error:
            status === 400
              ? 'invalid_request'
              : status === 429
                ? 'too_many_requests'
                : 'authority_unavailable',
          message,
        }
      )
      if (retryAfter !== undefined) res.headers.set('Retry-After', String(retryAfter))
      log(code, status, reason, reason)
      throw new HTTPException(status, { res })
    }

    const header = c.req.header('authorization')
    if (!header || !/^\s*digest(\s|$)/i.test(header)) {
      return challenge(
        'SEC_I_CONTINUE_NEEDED',
        'challenge',
        header ? 'other_scheme' : 'no_credentials'
      )
    }

    let creds: DigestCredentials
    try {
      creds = parseAuthorization(header)
    } catch (err) {
      if (err instanceof DigestError) {
        return fail(400, 'SEC_E_INVALID_TOKEN', `malformed_${err.code}`, err.message)
      }
      throw err
    }
    trace.user = creds.username
    const algorithm: AlgorithmName = creds.algorithm ?? 'MD5'
    trace.algorithm = algorithm

    if (creds.realm !== o.realm) {
      return challenge('SEC_E_LOGON_DENIED', 'denied', 'realm_mismatch')
    }
    if (!o.algorithms.includes(algorithm)) {
      return challenge('SEC_E_LOGON_DENIED', 'denied', 'algorithm_not_offered')
    }
    if (creds.qop ? !o.qop.includes(creds.qop) : o.qop.length > 0) {
      return challenge('SEC_E_LOGON_DENIED', 'denied', 'qop_not_offered')
    }
    if (creds.userhash && !o.userhash) {
      return challenge('SEC_E_LOGON_DENIED', 'denied', 'userhash_not_offered')
    }
    if (o.validateUri && !uriMatchesTarget(creds.uri, new URL(c.req.url))) {
      return fail(
        400,
        'SEC_E_INVALID_TOKEN',
        'uri_mismatch',
        'the uri directive does not match the request target'
      )
    }

    // Nonce and opaque are MAC-checked before any storage or authority I/O.
    const nonce = await minter.verifyNonce(creds.nonce, {
      serverId: o.serverId,
      now,
      lifetimeSeconds: o.nonceLifetime,
    })
    if (!nonce.ok) return challenge('SEC_E_INVALID_HANDLE', 'denied', `nonce_${nonce.reason}`)
    if (creds.opaque !== undefined) {
      const opaque = await minter.verifyOpaque(creds.opaque)
      if (!opaque.ok) return challenge('SEC_E_INVALID_HANDLE', 'denied', `opaque_${opaque.reason}`)
      if (opaque.handle !== nonce.handle) {
        return challenge('SEC_E_INVALID_HANDLE', 'denied', 'opaque_nonce_mismatch')
      }
    }
    const handle = nonce.handle

    const bodyHash =
      creds.qop === 'auth-int'
        ? await hashStreamHex(hashOf(algorithm), c.req.raw.clone().body)
        : undefined
    const request: ContextRequest = {
      username: creds.username,
      userhash: creds.userhash,
      realm: creds.realm,
      algorithm,
      nonce: creds.nonce,
      nonceIssuedAt: nonce.issuedAt,
      nonceExpired: nonce.expired,
      uri: creds.uri,
      method: c.req.method,
      response: creds.response,
      qop: creds.qop,
      nc: creds.nc,
      ncRaw: creds.ncRaw,
      cnonce: creds.cnonce,
      bodyHash,
      now,
    }
    const ip = clientIp(c)
    const recordFailure = () => {
      if (!o.brakes) return
      const p = o.brakes.store.recordFailure(ip, creds.username, now, brakePolicy).catch(() => {})
      try {
        c.executionCtx.waitUntil(p)
      } catch {
        // No execution context (e.g. app.request in tests): the promise still runs.
      }
    }

    let cached =
      o.replay === 'off'
        ? await verifyFromIsolate(isolateCache, handle, request, policy)
        : undefined
    if (!cached) {
      trace.contextCalls++
      cached = await o.contexts.verify(handle, request, policy)
      if (cached.outcome === 'ok' && cached.cached)
        isolateCache.put(handle, cached.cached, now, o.revalidateAfter)
      else isolateCache.delete(handle)
    }
    let principal: Principal
    let rspauth: string
    let verifiedBy: DigestAuthResult['verifiedBy']
    switch (cached.outcome) {
      case 'ok':
        principal = cached.principal
        rspauth = cached.rspauth
        verifiedBy = 'context'
        break
      case 'stale':
        return challenge('SEC_E_CONTEXT_EXPIRED', 'stale', 'nonce_expired', { stale: true, handle })
      case 'replay':
        return challenge('SEC_E_LOGON_DENIED', 'stale', 'nc_replay', { stale: true, handle })
      case 'revoked':
        return challenge('SEC_E_INVALID_HANDLE', 'denied', 'context_revoked')
      case 'locked':
        recordFailure()
        return challenge('SEC_E_LOGON_DENIED', 'denied', 'context_locked')
      case 'mismatch':
        recordFailure()
        return challenge('SEC_E_LOGON_DENIED', 'denied', 'response_mismatch')
      case 'ask_authority': {
        if (o.brakes) {
          const verdict = await o.brakes.store.admit(ip, creds.username, now, brakePolicy)
          if (!verdict.ok) {
            return fail(
              429,
              'SEC_E_RATE_LIMITED',
              verdict.reason,
              'too many failed attempts: retry later',
              verdict.retryAfter
            )
          }
        }
        trace.authorityCalled = true
        const answer = await o.authority.verify(toVerifyRequest(o.serverId, request))
        if (answer.result === 'fault') {
          return fail(
            503,
            'SEC_E_NO_AUTHENTICATING_AUTHORITY',
            `authority_${answer.reason}`,
            'the authentication authority is unavailable: retry later',
            DEFAULTS.retryAfterAuthorityFault
          )
        }
        if (answer.result === 'denied') {
          if (cached.reason === 'revalidate' || cached.reason === 'expired') {
            trace.contextCalls++
            await o.contexts.revoke(handle)
          }
          if (answer.reason === 'logon_denied') recordFailure()
          return challenge('SEC_E_LOGON_DENIED', 'denied', `authority_${answer.reason}`)
        }
        if (hashOf(answer.algorithm) !== hashOf(algorithm)) {
          return fail(
            503,
            'SEC_E_NO_AUTHENTICATING_AUTHORITY',
            'authority_wrong_algorithm',
            'the authentication authority answered inconsistently',
            DEFAULTS.retryAfterAuthorityFault
          )
        }
        trace.contextCalls++
        const established = await o.contexts.establish(
          handle,
          { ...request, principal: answer.principal, sessionKey: answer.sessionKey },
          policy
        )
        if (established.outcome === 'stale') {
          return challenge('SEC_E_CONTEXT_EXPIRED', 'stale', 'nonce_expired', {
            stale: true,
            handle,
          })
        }
        if (established.outcome === 'replay') {
          return challenge('SEC_E_LOGON_DENIED', 'stale', 'nc_replay', { stale: true, handle })
        }
        principal = answer.principal
        rspauth = established.rspauth
        verifiedBy = 'authority'
        break
      }
    }

    trace.user = principal.name
    c.set('digestAuth', { principal, contextHandle: handle, algorithm, verifiedBy })
    if (o.onAuthSuccess) await o.onAuthSuccess(c, principal)
    log(
      verifiedBy === 'authority' ? 'SEC_E_OK' : 'SEC_I_COMPLETE_NEEDED',
      200,
      verifiedBy === 'authority' ? 'authenticated' : 'verified_at_edge'
    )

    await next()

    const nextnonce =
      nonce.ageSeconds >= o.nonceLifetime - o.nextnonceLead
        ? await minter.mintNonce({ serverId: o.serverId, handle, now })
        : undefined
    const info = formatAuthenticationInfo({
      rspauth: rspauth || undefined,
      qop: creds.qop,
      nc: creds.ncRaw,
      cnonce: creds.cnonce,
      nextnonce,
    })
    // A WebSocket upgrade (101) cannot be rebuilt; it goes out without Authentication-Info.
    if (c.res.status === 101) return
    c.res = new Response(c.res.body, c.res)
    c.res.headers.set('Authentication-Info', info)
  }
}

/**
 * Replay mode `off`: verify from the isolate cache with no storage call. Undefined = not cached or
 * not decidable here (the Durable Object then decides, and counts failures).
 */
async function verifyFromIsolate(
  cache: IsolateContextCache,
  handle: string,
  req: ContextRequest,
  policy: ContextPolicy
): Promise<VerifyOutcome | undefined> {
  const row = cache.get(handle, req.now)
  if (!row || precheck(row, req, policy) || !(await responseMatches(row, req))) return undefined
  if (req.nonceExpired) return { outcome: 'stale' }
  return { outcome: 'ok', principal: row.principal, rspauth: await rspauthFor(row, req) }
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

async function messageResponse(
  c: Context,
  status: number,
  custom: MessageOption | undefined,
  fallback: { error: string; message: string }
): Promise<Response> {
  const body =
    custom === undefined ? fallback : typeof custom === 'function' ? await custom(c) : custom
  return typeof body === 'string'
    ? new Response(body, { status, headers: { 'content-type': 'text/plain; charset=UTF-8' } })
    : Response.json(body, { status })
}

type Resolved = Required<
  Omit<
    DigestAuthOptions,
    'onAuthSuccess' | 'clientIp' | 'unauthorizedMessage' | 'invalidRequestMessage' | 'brakes'
  >
> &
  Pick<
    DigestAuthOptions,
    'onAuthSuccess' | 'clientIp' | 'unauthorizedMessage' | 'invalidRequestMessage'
  > & {
    brakes: Exclude<DigestAuthOptions['brakes'], undefined>
  }

/** Apply defaults and refuse a configuration that could not work, at construction time. */
export function resolveOptions(options: DigestAuthOptions): Resolved {
  const o = {
    algorithms: DEFAULTS.algorithms,
    qop: DEFAULTS.qop,
    userhash: DEFAULTS.userhash,
    nonceLifetime: DEFAULTS.nonceLifetime,
    nextnonceLead: DEFAULTS.nextnonceLead,
    replay: DEFAULTS.replay,
    windowSize: DEFAULTS.windowSize,
    validateUri: DEFAULTS.validateUri,
    idleTimeout: DEFAULTS.idleTimeout,
    maxLifetime: DEFAULTS.maxLifetime,
    revalidateAfter: DEFAULTS.revalidateAfter,
    onDecision: logDecision,
    ...stripUndefined(options),
    brakes: options.brakes ?? false,
  } as Resolved
  if (!o.realm) throw new Error('digestAuth: realm is required')
  if (!o.serverId) throw new Error('digestAuth: serverId is required')
  if (o.algorithms.length === 0) throw new Error('digestAuth: at least one algorithm is required')
  if (o.windowSize < 64) throw new Error('digestAuth: windowSize must be at least 64')
  for (const n of ['nonceLifetime', 'idleTimeout', 'maxLifetime', 'revalidateAfter'] as const) {
    if (!(o[n] > 0)) throw new Error(`digestAuth: ${n} must be a positive number of seconds`)
  }
  return o
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
