/**
 * digestAuth(): the originating server of the Microsoft Digest model as Hono middleware.
 *
 * No usable credentials -> 401 challenge. Initial authentication -> the authority verifies and
 * returns the session key, cached in the context's Durable Object. Later requests -> that object
 * alone verifies them. Failures are thrown as HTTPException carrying WWW-Authenticate, like
 * Hono's basicAuth / bearerAuth.
 */
import type { MiddlewareHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Principal } from '../authority-protocol/v1.ts'
import { formatAuthenticationInfo } from '../digest/header.ts'
import { createTokenMinter, type TokenMinter } from '../digest/tokens.ts'
import type { AlgorithmName } from '../digest/types.ts'
import { refusalResponse } from './answers.ts'
import { authenticate } from './authenticate.ts'
import { clientBucket } from './client-bucket.ts'
import type { Binding } from './context-types.ts'
import type { SspiCode, Trace } from './decision-log.ts'
import { IsolateContextCache } from './isolate-cache.ts'
import type { DigestAuthOptions } from './options.ts'
import { canonicalizePath } from './request-path.ts'
import { type ResolvedOptions, resolveOptions } from './resolve-options.ts'
import { type Acceptance, type ErrorRefusal, invalidRequest, type Verdict } from './verdict.ts'

export interface DigestAuthResult {
  principal: Principal
  /** The security context's handle (the opaque names it). */
  contextHandle: string
  algorithm: AlgorithmName
  /** 'authority': initial authentication; 'context': verified at the edge from the cached key. */
  verifiedBy: 'authority' | 'context'
}

export type DigestAuthVariables = {
  digestAuth: DigestAuthResult
  /** The canonical request path, when an earlier middleware computed it (the gate worker does). */
  requestPath?: string
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
  const isolateCache = new IsolateContextCache()
  // The minter holds the imported HMAC keys: imported once per middleware, again after a failure.
  let minterPromise: Promise<TokenMinter> | undefined
  const minterFor = () => {
    if (!minterPromise) {
      minterPromise = createTokenMinter(o.nonceKeys)
      minterPromise.catch(() => {
        minterPromise = undefined
      })
    }
    return minterPromise
  }
  const inflight = new Map<string, Promise<Verdict>>()

  return async function digestAuth(c, next) {
    const now = Math.floor(Date.now() / 1000)
    const trace: Trace = { started: Date.now(), authorityCalled: false, contextCalls: 0 }
    const minter = await minterFor()
    const url = new URL(c.req.url)
    const badPath = useCanonicalPath(url, c.get('requestPath'))
    const log = (code: SspiCode, status: number, outcome: string, reason?: string) =>
      o.onDecision({
        event: 'digest-gate.decision',
        outcome,
        code,
        status,
        method: c.req.method,
        path: url.pathname,
        user: trace.user,
        reason,
        algorithm: trace.algorithm,
        authorityCalled: trace.authorityCalled,
        contextCalls: trace.contextCalls,
        latencyMs: Date.now() - trace.started,
      })

    const bucket = clientBucket(o.clientIp(c), c.req.header('cf-worker'))
    const declaredLength = Number(c.req.header('content-length') ?? Number.NaN)
    const verdict =
      badPath ??
      (await authenticate(
        o,
        {
          method: c.req.method,
          url,
          authorization: c.req.header('authorization'),
          body: () => c.req.raw.clone().body,
          contentLength: Number.isSafeInteger(declaredLength) ? declaredLength : undefined,
          bucket,
          binding: bindingOf(o.binding, c.req.raw, bucket),
          now,
          waitUntil: (p) => {
            try {
              c.executionCtx.waitUntil(p)
            } catch {
              // No execution context (e.g. app.request in tests): the promise still runs.
            }
          },
        },
        { minter, isolateCache, inflight, trace }
      ))

    if (verdict.kind !== 'accept') {
      const res = await refusalResponse(c, o, minter, verdict, now)
      const outcome =
        verdict.kind === 'error'
          ? verdict.reason
          : verdict.staleHandle
            ? 'stale'
            : verdict.code === 'SEC_I_CONTINUE_NEEDED'
              ? 'challenge'
              : 'denied'
      log(verdict.code, res.status, outcome, verdict.reason)
      throw new HTTPException(res.status as 400 | 401 | 429 | 503, { res })
    }

    trace.user = verdict.principal.name
    c.set('digestAuth', {
      principal: verdict.principal,
      contextHandle: verdict.handle,
      algorithm: verdict.algorithm,
      verifiedBy: verdict.verifiedBy,
    })
    if (o.onAuthSuccess) await o.onAuthSuccess(c, verdict.principal)
    const initial = verdict.verifiedBy === 'authority'
    log(
      initial ? 'SEC_E_OK' : 'SEC_I_COMPLETE_NEEDED',
      200,
      initial ? 'authenticated' : 'verified_at_edge',
      trace.deferred && `revalidation_deferred_${trace.deferred}`
    )

    await next()

    // A WebSocket upgrade (101) cannot be rebuilt; it goes out without Authentication-Info.
    if (c.res.status === 101) return
    const info = await authenticationInfo(o, minter, verdict, now)
    try {
      c.res.headers.set('Authentication-Info', info)
    } catch {
      // Immutable headers (a fetch() response passed through as is): rebuild once.
      c.res = new Response(c.res.body, c.res)
      c.res.headers.set('Authentication-Info', info)
    }
  }
}

/**
 * Put the canonical path into `url`: the one the router matched, or computed here when nobody
 * did. Parameters are kept then: which paths may carry them is the router's decision.
 */
function useCanonicalPath(url: URL, handed: string | undefined): ErrorRefusal | undefined {
  if (handed !== undefined) {
    url.pathname = handed
    return undefined
  }
  const canonical = canonicalizePath(url.pathname, { allowParameters: true })
  if (!canonical.ok) {
    return invalidRequest(`path_${canonical.reason}`, `request path refused: ${canonical.message}`)
  }
  url.pathname = canonical.path
  return undefined
}

/** rspauth (mutual authentication), and a nextnonce when the nonce nears its end (RFC 7616 §3.5). */
async function authenticationInfo(
  o: ResolvedOptions,
  minter: TokenMinter,
  v: Acceptance,
  now: number
): Promise<string> {
  // Without qop there is no nc: such a nonce is single-use, so the client always gets the next.
  const singleUse = v.credentials.qop === undefined && o.replay !== 'off'
  const nextnonce =
    singleUse || v.nonceAgeSeconds >= o.nonceLifetime - o.nextnonceLead
      ? await minter.mintNonce({ serverId: o.serverId, handle: v.handle, now })
      : undefined
  return formatAuthenticationInfo({
    rspauth: v.rspauth || undefined,
    qop: v.credentials.qop,
    nc: v.credentials.ncRaw,
    cnonce: v.credentials.cnonce,
    nextnonce,
  })
}

/**
 * The channel facts a context is bound to (BINDING): the client's bucket, or the fingerprint of
 * the TLS client certificate Cloudflare saw (mTLS). Undefined when binding is off or no
 * certificate was presented. TLS proves the client holds the certificate's key.
 */
function bindingOf(binding: Binding, request: Request, bucket: string): string | undefined {
  if (binding === 'address') return `address:${bucket}`
  if (binding !== 'client-cert') return undefined
  const cert = (
    request as {
      cf?: { tlsClientAuth?: { certPresented?: string; certFingerprintSHA256?: string } }
    }
  ).cf?.tlsClientAuth
  if (cert?.certPresented !== '1' || !cert.certFingerprintSHA256) return undefined
  return `cert:${cert.certFingerprintSHA256.toLowerCase()}`
}
