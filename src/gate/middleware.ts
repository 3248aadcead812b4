/**
 * digestAuth(): HTTP Digest authentication (RFC 7616) as Hono middleware — the originating server
 * of the Microsoft Digest model.
 *
 * No usable credentials → 401 with a challenge. A user's first answer → verified by the users
 * given (simple form) or by the authority, whose session key is then cached in the security
 * context; later requests → verified from that key alone. Refusals are thrown as HTTPException
 * carrying WWW-Authenticate, like Hono's basicAuth.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Principal } from '../authority-protocol/v1.ts'
import { formatAuthenticationInfo } from '../digest/header.ts'
import { createTokenMinter, type TokenMinter } from '../digest/tokens.ts'
import type { AlgorithmName } from '../digest/types.ts'
import { refusalResponse } from './answers.ts'
import { authenticate, type Io } from './authenticate.ts'
import type { AuthorityClient } from './authority-client.ts'
import type { BrakeStore } from './brake-policy.ts'
import { clientBucket } from './client-bucket.ts'
import type { Binding, ContextStore } from './context-types.ts'
import { type DecisionLog, dropsRoutine, type SspiCode } from './decision-log.ts'
import { headerKey } from './header-key.ts'
import { IsolateContextCache } from './isolate-cache.ts'
import { KnownHandles } from './known-handles.ts'
import { ContextStoreFullError } from './memory-contexts.ts'
import type { DigestAuthOptions } from './options.ts'
import { canonicalizePath, pathAndQuery } from './request-path.ts'
import { type ResolvedOptions, resolveOptions } from './resolve-options.ts'
import { type Acceptance, authorityUnavailable, invalidRequest, type Verdict } from './verdict.ts'
import type { BatchCaller } from './verify-batches.ts'

/** What digestAuth() sets as `c.var.digestAuth` for the handlers after it. */
export interface DigestAuthResult {
  principal: Principal
  /** The security context's handle (the opaque names it). */
  contextHandle: string
  algorithm: AlgorithmName
  /** 'authority': initial authentication; 'context': verified from the cached session key. */
  verifiedBy: 'authority' | 'context'
}

declare module 'hono' {
  interface ContextVariableMap {
    digestAuth: DigestAuthResult
    /** The canonical request path, when an earlier middleware computed it (the gate worker does). */
    requestPath?: string
  }
}

/**
 * HTTP Digest authentication for the routes it is mounted on.
 *
 * @param options.realm - the protection space shown to users.
 * @param options.users - the simple form: name → password (or a lookup function).
 * @param options.authority - or a separate authority (httpAuthority()) verifies first logins.
 * @param options.contexts - where security contexts live; default this process's memory.
 * @example Simple form, any runtime
 * app.use('/private/*', digestAuth({ realm: 'api', users: { alice: 'wonderland' } }))
 * app.get('/private/me', (c) => c.json(c.var.digestAuth.principal))
 * @example Edge form on Cloudflare (bindings from wrangler.toml; see README)
 * import { durableObjectBrakes, durableObjectContexts } from 'digest-gate/cloudflare'
 * app.use('/private/*', (c, next) => (auth ??= digestAuth({
 *   realm: 'api',
 *   nonceKeys: { current: { id: 1, secret: c.env.NONCE_KEY } },
 *   authority: httpAuthority({ url: c.env.AUTHORITY_URL, token: c.env.AUTHORITY_TOKEN }),
 *   contexts: durableObjectContexts(c.env.CONTEXTS, c.env.USER_CONTEXTS),
 *   brakes: { store: durableObjectBrakes(c.env.BRAKE_COUNTERS) },
 * }))(c, next))
 */
export function digestAuth(options: DigestAuthOptions): MiddlewareHandler {
  const o = resolveOptions(options)
  const isolateCache = new IsolateContextCache()
  const known = new KnownHandles()
  const inflight = new Map<string, Promise<Verdict>>()
  // At the default levels a request verified at the edge writes no line: its record is not built.
  const quietOnRoutine = dropsRoutine(o.onDecision)
  // The minter holds the imported HMAC keys: imported once per middleware, again after a failure.
  // Kept once ready: awaiting a promise that another request created costs workerd far more than
  // reading a variable.
  let minter: TokenMinter | undefined
  let minterPromise: Promise<TokenMinter> | undefined
  const minterFor = () => {
    if (!minterPromise) {
      minterPromise = createTokenMinter(o.nonceKeys)
      minterPromise.then(
        (ready) => {
          minter = ready
        },
        () => {
          minterPromise = undefined
        }
      )
    }
    return minterPromise
  }

  return async function digestAuth(c, next) {
    if (o.passPreflights && isPreflight(c.req.raw)) return next()
    const started = Date.now()
    const now = Math.floor(started / 1000)
    const ready = minter ?? (await minterFor())
    const url = pathAndQuery(c.req.url)
    const path = c.get('requestPath') ?? canonicalPathOf(url.pathname)
    const meter = new MeteredIo(o)
    let verdict: Verdict
    if (typeof path !== 'string') verdict = path
    else {
      const bucket = clientBucket(o.clientIp(c), c.req.header('cf-worker'))
      const declaredLength = Number(c.req.header('content-length') ?? Number.NaN)
      verdict = await authenticate(
        o,
        {
          method: c.req.method,
          path,
          search: url.search,
          authorization: c.req.header('authorization'),
          body: () => c.req.raw.clone().body,
          contentLength: Number.isSafeInteger(declaredLength) ? declaredLength : undefined,
          bucket,
          binding: bindingOf(o.binding, c.req.raw, bucket),
          now,
          waitUntil: (p) => waitUntil(c, p),
          client: () => ({ address: o.clientIp(c), userAgent: c.req.header('user-agent') }),
        },
        { minter: ready, isolateCache, known, inflight, io: meter }
      ).catch(storeFault)
    }
    const decided = (entry: DecisionLog) => o.onDecision(entry, c)
    const log = (code: SspiCode, status: number, outcome: string, reason?: string, user?: string) =>
      decided({
        event: 'digest-gate.decision',
        outcome,
        code,
        status,
        method: c.req.method,
        path: url.pathname,
        user,
        reason,
        algorithm: verdict.algorithm,
        authorityCalled: meter.authorityCalled,
        contextCalls: meter.calls,
        latencyMs: Date.now() - started,
        ray: c.req.header('cf-ray'),
      })

    if (verdict.kind !== 'accept') {
      const res = await refusalResponse(c, o, ready, verdict, now)
      const outcome =
        verdict.kind === 'error'
          ? verdict.reason
          : verdict.staleHandle
            ? 'stale'
            : verdict.code === 'SEC_I_CONTINUE_NEEDED'
              ? 'challenge'
              : 'denied'
      log(verdict.code, res.status, outcome, verdict.reason, verdict.user)
      throw new HTTPException(res.status as 400 | 401 | 413 | 429 | 503, { res })
    }

    const { principal } = verdict
    if (o.authorize && !(await o.authorize(c, principal))) {
      log('SEC_E_OK', 403, 'forbidden', 'not_authorized', principal.name)
      throw new HTTPException(403, {
        res: Response.json(
          { error: 'forbidden', message: 'your groups do not grant access to this path' },
          { status: 403, headers: { 'cache-control': 'no-store' } }
        ),
      })
    }
    c.set('digestAuth', {
      principal,
      contextHandle: verdict.handle,
      algorithm: verdict.algorithm,
      verifiedBy: verdict.verifiedBy,
    })
    if (o.onAuthSuccess) await o.onAuthSuccess(c, principal)
    const initial = verdict.verifiedBy === 'authority'
    // Routine (decision-log.ts severityOf): verified at the edge, nothing deferred.
    const logged = initial || verdict.deferred !== undefined || !quietOnRoutine
    const logAccepted = (status: number) =>
      log(
        initial ? 'SEC_E_OK' : 'SEC_I_COMPLETE_NEEDED',
        status,
        initial ? 'authenticated' : 'verified_at_edge',
        verdict.deferred && `revalidation_deferred_${verdict.deferred}`,
        principal.name
      )
    // A WebSocket handshake is logged once the origin has answered it: 101 when the socket opened.
    const handshake = logged && c.req.header('upgrade')?.trim().toLowerCase() === 'websocket'
    if (logged && !handshake) logAccepted(200)

    try {
      await next()
    } finally {
      if (handshake) logAccepted(c.res.status)
    }

    // A WebSocket upgrade (101) cannot be rebuilt; it goes out without Authentication-Info.
    if (c.res.status === 101) return
    const pending = authenticationInfo(o, ready, verdict, now)
    const info = typeof pending === 'string' ? pending : await pending
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
 * The canonical request path, or the refusal of one that cannot be read one way. Here it serves
 * the `uri` check only (the app's router has already chosen the route), so `;` parameters pass.
 */
function canonicalPathOf(pathname: string): string | Verdict {
  const canonical = canonicalizePath(pathname, { allowParameters: true })
  if (canonical.kind === 'canonical') return canonical.path
  return invalidRequest(`path_${canonical.reason}`, `request path refused: ${canonical.message}`)
}

/**
 * The request's I/O, counted for its decision record: one small object per request whose methods
 * live on prototypes (no closures or bound functions built per request).
 */
class MeteredIo implements Io {
  calls = 0
  authorityCalled = false
  readonly contexts: ContextStore
  readonly brakes: BrakeStore | undefined
  readonly authority: AuthorityClient

  constructor(o: ResolvedOptions) {
    this.contexts = new MeteredContexts(o.contexts, this)
    this.brakes = o.brakes ? new MeteredBrakes(o.brakes.store, this) : undefined
    this.authority = new MeteredAuthority(o.authority, this)
  }
}

/**
 * Calls to the contexts, counted as they reach the store: a verify answered within a call that
 * another request sent (a batch) is taken back, so `contextCalls` counts the calls this request
 * made. It stands in for the request's caller, so that no object is built per verify.
 */
class MeteredContexts implements ContextStore, BatchCaller {
  private readonly store: ContextStore
  private readonly meter: MeteredIo
  private caller: BatchCaller | undefined
  constructor(store: ContextStore, meter: MeteredIo) {
    this.store = store
    this.meter = meter
  }
  verify(...[handle, req, policy, caller]: Parameters<ContextStore['verify']>) {
    this.meter.calls++
    this.caller = caller
    return this.store.verify(handle, req, policy, caller && this)
  }
  waitUntil(p: Promise<unknown>): void {
    this.caller?.waitUntil(p)
  }
  rode(): void {
    this.meter.calls--
  }
  establish(...args: Parameters<ContextStore['establish']>) {
    this.meter.calls++
    return this.store.establish(...args)
  }
  revalidated(...args: Parameters<ContextStore['revalidated']>) {
    this.meter.calls++
    return this.store.revalidated(...args)
  }
  revoke(...args: Parameters<ContextStore['revoke']>) {
    this.meter.calls++
    return this.store.revoke(...args)
  }
  revokeUser(...args: Parameters<ContextStore['revokeUser']>) {
    this.meter.calls++
    return this.store.revokeUser(...args)
  }
}

/** Admissions and counted failures are calls; settling runs in the background, uncounted. */
class MeteredBrakes implements BrakeStore {
  private readonly store: BrakeStore
  private readonly meter: MeteredIo
  constructor(store: BrakeStore, meter: MeteredIo) {
    this.store = store
    this.meter = meter
  }
  admit(...args: Parameters<BrakeStore['admit']>) {
    this.meter.calls++
    return this.store.admit(...args)
  }
  recordFailure(...args: Parameters<BrakeStore['recordFailure']>) {
    this.meter.calls++
    return this.store.recordFailure(...args)
  }
  succeeded(...args: Parameters<BrakeStore['succeeded']>) {
    return this.store.succeeded(...args)
  }
  undecided(...args: Parameters<BrakeStore['undecided']>) {
    return this.store.undecided(...args)
  }
}

class MeteredAuthority implements AuthorityClient {
  private readonly authority: AuthorityClient
  private readonly meter: MeteredIo
  constructor(authority: AuthorityClient, meter: MeteredIo) {
    this.authority = authority
    this.meter = meter
  }
  verify(...args: Parameters<AuthorityClient['verify']>) {
    this.meter.authorityCalled = true
    return this.authority.verify(...args)
  }
}

/**
 * A store that cannot answer (a Durable Object overloaded or unreachable, the memory store full)
 * is a fault of the gate's own state: 503 with Retry-After, like an authority outage.
 */
function storeFault(err: unknown): Verdict {
  const e = err as { retryable?: unknown; overloaded?: unknown }
  const known =
    err instanceof ContextStoreFullError ||
    (typeof err === 'object' && err !== null && (e.retryable === true || e.overloaded === true))
  if (!known) throw err
  return authorityUnavailable('contexts_unavailable', 5)
}

function waitUntil(c: Context, p: Promise<unknown>): void {
  try {
    c.executionCtx.waitUntil(p)
  } catch {
    // No execution context (e.g. app.request in tests): the promise still runs.
  }
}

/**
 * rspauth (mutual authentication), and a nextnonce when the nonce nears its end (RFC 7616 §3.5).
 * Synchronous unless a nextnonce is minted: most requests need no await here.
 */
function authenticationInfo(
  o: ResolvedOptions,
  minter: TokenMinter,
  v: Acceptance,
  now: number
): string | Promise<string> {
  // Without qop there is no nc: such a nonce is single-use, so the client always gets the next.
  const singleUse = v.credentials.qop === undefined && o.replay !== 'off'
  if (singleUse || v.nonceAgeSeconds >= o.nonceLifetime - o.nextnonceLead) {
    return minter
      .mintNonce({ serverId: o.serverId, handle: v.handle, now })
      .then((nextnonce) => infoHeader(v, nextnonce))
  }
  return infoHeader(v, undefined)
}

function infoHeader(v: Acceptance, nextnonce: string | undefined): string {
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

/**
 * Headers that make Slim, Jersey, Google's APIs and others run another method than the request
 * line's (`method-override` middlewares): an unauthenticated OPTIONS carrying one could run DELETE.
 * Compared by headerKey (`X_HTTP_Method_Override` is HTTP_X_HTTP_METHOD_OVERRIDE too).
 */
const METHOD_OVERRIDE = new Set(['x-http-method-override', 'x-http-method', 'x-method-override'])

/**
 * A CORS preflight: browsers send it without credentials, before the request they mean. It passes
 * unauthenticated, so it must be only that: no body, no cookie (the Fetch standard omits
 * credentials) and no method override, all of which an origin may act on whatever the method.
 */
export function isPreflight(request: Request): boolean {
  const h = request.headers
  return (
    request.method === 'OPTIONS' &&
    h.has('origin') &&
    h.has('access-control-request-method') &&
    // workerd gives a `Content-Length: 0` request a body stream, empty by its framing.
    (request.body === null || (h.get('content-length') === '0' && !h.has('transfer-encoding'))) &&
    !h.has('cookie') &&
    ![...h.keys()].some((name) => METHOD_OVERRIDE.has(headerKey(name)))
  )
}
