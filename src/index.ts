/**
 * The gate worker: wrangler.toml vars and secrets → one canonical path per request → its route
 * rule → digestAuth (group rules as its `authorize`) → the origin. Admin routes (when ADMIN_TOKEN
 * is set) and the assertion's public keys come first and are not behind Digest; the operator's
 * console (when CONSOLE_GROUP is set) comes next, behind Digest for members of that group.
 */
import { type Context, Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { ADMIN_PREFIX, adminRoutes } from './gate/admin.ts'
import { type AuthorityClient, httpAuthority, type Readiness } from './gate/authority-client.ts'
import { durableObjectBrakes } from './gate/brake-store.ts'
import { ConfigError, type GateSecrets, type GateVars, readConfig } from './gate/config.ts'
import { RefusalBuffer, recordingRefusals } from './gate/console/refusals.ts'
import { consoleIndexName } from './gate/console/reports.ts'
import { consoleRoutes } from './gate/console/routes.ts'
import { writeLog } from './gate/decision-log.ts'
import { originForwarder } from './gate/forward.ts'
import { JWKS_PATH, jwksEndpoint } from './gate/jwks.ts'
import { digestAuth, isPreflight } from './gate/middleware.ts'
import { DEFAULTS, type DigestAuthOptions } from './gate/options.ts'
import { canonicalizePath, foldForMatch, pathAndQuery } from './gate/request-path.ts'
import { resolveOptions } from './gate/resolve-options.ts'
import { isAllowed, isPublic, matchRoute, type RouteRule } from './gate/routes.ts'
import { durableObjectContexts } from './gate/security-context.ts'
import { webdavScope } from './gate/webdav-scope.ts'

export { Brake } from './gate/brake.ts'
export { ConsoleIndex } from './gate/console/index-object.ts'
export { SecurityContext } from './gate/security-context.ts'
export { UserContexts } from './gate/user-contexts.ts'

type GateEnv = Env &
  GateVars &
  GateSecrets & {
    /** Optional service binding to the authority (instead of AUTHORITY_URL over the network). */
    AUTHORITY?: Fetcher
  }

type App = Hono<{
  Bindings: GateEnv
  Variables: {
    /** The request path's rule, then the rules of what else it acts on (webdav-scope.ts). */
    rules: RouteRule[]
    /** The Destination to forward, its path canonical. */
    destination?: string
  }
}>

/** The gate's own endpoints live under this prefix, never forwarded, never behind Digest. */
const GATE_PREFIX = '/.digest-gate'
const NO_STORE = { 'cache-control': 'no-store' }

/** How long a readiness answer is reused: a probe per few seconds, whatever the polling rate. */
const READINESS_CACHE_MS = 5000

/** The authority's readiness, probed at most once per READINESS_CACHE_MS in this isolate. */
function readiness(authority: AuthorityClient): () => Promise<Readiness> {
  let last: { at: number; answer: Promise<Readiness> } | undefined
  return () => {
    const now = Date.now()
    if (!last || now - last.at >= READINESS_CACHE_MS) {
      last = { at: now, answer: authority.probe?.() ?? Promise.resolve({ kind: 'ready' }) }
    }
    return last.answer
  }
}

/** The app is built once per isolate and configuration. */
const apps = new WeakMap<object, App>()

export function buildGate(env: GateEnv): App {
  const config = readConfig(env, env.AUTHORITY !== undefined)
  const options = {
    ...config.auth,
    authority: httpAuthority({
      url: config.authority.url ?? 'https://authority/v1/verify',
      token: config.authority.token,
      timeoutMs: config.authority.timeoutMs,
      fetcher: config.authority.url ? undefined : env.AUTHORITY,
    }),
    contexts: durableObjectContexts(env.CONTEXTS, env.USER_CONTEXTS),
    brakes: config.brakes && { ...config.brakes, store: durableObjectBrakes(env.BRAKE_COUNTERS) },
    // The routes decide about preflights (per rule), not the middleware.
    passPreflights: false,
    authorize: (c: Context, principal: { groups: string[] }) =>
      (c.get('rules') as RouteRule[]).every((rule) => isAllowed(rule, principal.groups)),
    onDecision: undefined as DigestAuthOptions['onDecision'],
  }
  // What digestAuth refuses when built (a realm no header can carry, a window too large) comes
  // from the worker's variables: a configuration error, answered as one.
  const resolved = asConfigError(() => resolveOptions(options))
  const consoleGroup = config.consoleGroup
  if (consoleGroup && !env.CONSOLE_INDEX) {
    throw new ConfigError('CONSOLE_GROUP needs the CONSOLE_INDEX Durable Object binding')
  }
  const consoleIndex = () => env.CONSOLE_INDEX.getByName(consoleIndexName(config.auth.realm))
  if (consoleGroup) {
    // Refusals go to the console's ring too, batched per isolate, off the request's path.
    const refusals = new RefusalBuffer((rows) =>
      consoleIndex().refused(rows, Math.floor(Date.now() / 1000))
    )
    options.onDecision = recordingRefusals(resolved.onDecision, resolved.clientIp, refusals)
  }
  const auth = digestAuth(options)
  const logLevel = config.forward.logLevel ?? DEFAULTS.logLevel
  const app: App = new Hono()

  // Public, before anything else: liveness (the configuration read), readiness (the authority).
  app.get(`${GATE_PREFIX}/healthz`, (c) => c.json({ status: 'ok' }, 200, NO_STORE))
  const ready = readiness(options.authority)
  app.get(`${GATE_PREFIX}/readyz`, async (c) => {
    const r = await ready()
    return r.kind === 'ready'
      ? c.json({ status: 'ready' }, 200, NO_STORE)
      : c.json({ status: 'unready', reason: r.reason }, 503, { ...NO_STORE, 'retry-after': '5' })
  })
  if (config.adminToken) {
    app.route(
      ADMIN_PREFIX,
      adminRoutes(config.adminToken, options.contexts, resolved.policy, logLevel)
    )
  }

  // The assertion's public keys, for origins: public like any JWT issuer's key set.
  const jwks = jwksEndpoint(config.publishedKeys)
  app.all(JWKS_PATH, (c) => jwks(c.req.raw))

  // The operator's console: the gate's own Digest authentication, for members of CONSOLE_GROUP.
  if (consoleGroup) {
    const consoleAuth = digestAuth({
      ...options,
      authorize: (_c, principal) => principal.groups.includes(consoleGroup),
    })
    app.route(
      '/',
      consoleRoutes(consoleAuth, {
        index: consoleIndex,
        contexts: options.contexts,
        policy: resolved.policy,
        realm: config.auth.realm,
        logLevel,
      })
    )
  }

  // One canonical path per request: rules match it, digestAuth checks `uri` against it, and it
  // alone is forwarded.
  app.use('*', async (c, next) => {
    const { pathname } = pathAndQuery(c.req.url)
    // A path (or a WebDAV Destination) that cannot be read one way: 400, and a log line.
    const refused = (reason: string, message: string) => {
      writeLog(logLevel, 'denial', {
        event: 'digest-gate.path_refused',
        reason,
        method: c.req.method,
        path: pathname.slice(0, 256),
        ray: c.req.header('cf-ray'),
      })
      return c.json({ error: 'invalid_request', message }, 400, NO_STORE)
    }
    const canonical = canonicalizePath(pathname, { allowParameters: config.allowPathParameters })
    if (canonical.kind === 'refused') {
      return refused(canonical.reason, `request path refused: ${canonical.message}`)
    }
    // The gate's own prefix is never the origin's: what no route above answered does not exist.
    const folded = foldForMatch(canonical.matchPath)
    if (folded === GATE_PREFIX || folded.startsWith(`${GATE_PREFIX}/`)) {
      return c.json({ error: 'not_found', message: 'no such gate endpoint' }, 404, NO_STORE)
    }
    c.set('requestPath', canonical.path)
    const rule = matchRoute(config.routes, canonical.matchPath)
    const scope = webdavScope(
      config.routes,
      {
        method: c.req.method,
        url: c.req.url,
        matchPath: canonical.matchPath,
        header: (name) => c.req.header(name),
      },
      config.allowPathParameters
    )
    if (scope.kind === 'refused') return refused(scope.reason, scope.message)
    const rules = [rule, ...scope.rules]
    c.set('rules', rules)
    if (scope.destination !== undefined) c.set('destination', scope.destination)
    if (rules.every(isPublic)) return next()
    // A CORS preflight reaches the origin unauthenticated (it owns its CORS policy), unless the
    // rule says otherwise; only one that acts on its own path (no Destination, no collection).
    if (rule.preflight !== false && scope.rules.length === 0 && isPreflight(c.req.raw)) {
      return next()
    }
    return auth(c, next)
  })

  const forward = originForwarder(config.forward)
  app.all('*', (c) =>
    forward(
      c.req.raw,
      c.get('digestAuth')?.principal,
      Math.floor(Date.now() / 1000),
      c.get('requestPath'),
      c.get('destination')
    )
  )

  app.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse()
    // A key that only fails once imported (assertion-keys.ts) is a configuration error too.
    if (err instanceof ConfigError) return misconfigured(err, new URL(c.req.url).pathname)
    writeLog(logLevel, 'fault', {
      event: 'digest-gate.error',
      message: String(err),
      path: new URL(c.req.url).pathname,
      ray: c.req.header('cf-ray'),
    })
    return c.json({ error: 'internal', message: 'internal error' }, 500)
  })
  return app
}

function asConfigError<T>(build: () => T): T {
  try {
    return build()
  } catch (err) {
    if (err instanceof TypeError && err.message.startsWith('digestAuth: ')) {
      throw new ConfigError(err.message)
    }
    throw err
  }
}

/**
 * A configuration error: the details (which may quote configured values) go to the operator's log
 * only, whatever LOG_LEVEL says (it may be the variable at fault); healthz answers 503.
 */
function misconfigured(err: ConfigError, path: string): Response {
  console.error(JSON.stringify({ event: 'digest-gate.config_error', message: err.message }))
  const health = path === `${GATE_PREFIX}/healthz`
  return Response.json(
    health
      ? { status: 'misconfigured' }
      : { error: 'misconfigured', message: 'the gate is misconfigured: see its log' },
    { status: health ? 503 : 500, headers: NO_STORE }
  )
}

export default {
  fetch(request, env, ctx) {
    let app = apps.get(env)
    if (!app) {
      try {
        app = buildGate(env)
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err
        return misconfigured(err, new URL(request.url).pathname)
      }
      apps.set(env, app)
    }
    return app.fetch(request, env, ctx)
  },
} satisfies ExportedHandler<GateEnv>
