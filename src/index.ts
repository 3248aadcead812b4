/**
 * The gate worker: wrangler.toml vars and secrets → one canonical path per request → its route
 * rule → digestAuth (group rules as its `authorize`) → the origin. Admin routes (when ADMIN_TOKEN
 * is set) and the assertion's public keys come first and are not behind Digest.
 */
import { type Context, Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { ADMIN_PREFIX, adminRoutes } from './gate/admin.ts'
import { httpAuthority } from './gate/authority-client.ts'
import { durableObjectBrakes } from './gate/brake-store.ts'
import { ConfigError, type GateSecrets, type GateVars, readConfig } from './gate/config.ts'
import { forwardToOrigin } from './gate/forward.ts'
import { JWKS_PATH, jwksEndpoint } from './gate/jwks.ts'
import { digestAuth } from './gate/middleware.ts'
import { canonicalizePath } from './gate/request-path.ts'
import { resolveOptions } from './gate/resolve-options.ts'
import { isAllowed, matchRoute, type RouteRule } from './gate/routes.ts'
import { durableObjectContexts } from './gate/security-context.ts'

export { Brake } from './gate/brake.ts'
export { SecurityContext } from './gate/security-context.ts'
export { UserContexts } from './gate/user-contexts.ts'

type GateEnv = Env &
  GateVars &
  GateSecrets & {
    /** Optional service binding to the authority (instead of AUTHORITY_URL over the network). */
    AUTHORITY?: Fetcher
  }

type App = Hono<{ Bindings: GateEnv; Variables: { route: RouteRule } }>

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
    authorize: (c: Context, principal: { groups: string[] }) =>
      isAllowed(c.get('route') as RouteRule, principal.groups),
  }
  const auth = digestAuth(options)
  const app: App = new Hono()

  if (config.adminToken) {
    app.route(
      ADMIN_PREFIX,
      adminRoutes(config.adminToken, options.contexts, resolveOptions(options).policy)
    )
  }

  // The assertion's public keys, for origins: public like any JWT issuer's key set.
  const jwks = jwksEndpoint(config.publishedKeys)
  app.all(JWKS_PATH, (c) => jwks(c.req.raw))

  // One canonical path per request: rules match it, digestAuth checks `uri` against it, and it
  // alone is forwarded.
  app.use('*', async (c, next) => {
    const { pathname } = new URL(c.req.url)
    const canonical = canonicalizePath(pathname, { allowParameters: config.allowPathParameters })
    if (canonical.kind === 'refused') {
      console.log(
        JSON.stringify({
          event: 'digest-gate.path_refused',
          reason: canonical.reason,
          method: c.req.method,
          path: pathname.slice(0, 256),
        })
      )
      return Response.json(
        { error: 'invalid_request', message: `request path refused: ${canonical.message}` },
        { status: 400, headers: { 'cache-control': 'no-store' } }
      )
    }
    c.set('requestPath', canonical.path)
    const rule = matchRoute(config.routes, canonical.matchPath)
    c.set('route', rule)
    return 'access' in rule && rule.access === 'public' ? next() : auth(c, next)
  })

  app.all('*', (c) =>
    forwardToOrigin(
      c.req.raw,
      c.get('digestAuth')?.principal,
      config.forward,
      Math.floor(Date.now() / 1000),
      c.get('requestPath')
    )
  )

  app.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse()
    // A key that only fails once imported (assertion-keys.ts) is a configuration error too.
    if (err instanceof ConfigError) return misconfigured(err)
    console.error(
      JSON.stringify({
        event: 'digest-gate.error',
        message: String(err),
        path: new URL(c.req.url).pathname,
      })
    )
    return c.json({ error: 'internal', message: 'internal error' }, 500)
  })
  return app
}

/** The details (which may quote configured values) go to the operator's log only. */
function misconfigured(err: ConfigError): Response {
  console.error(JSON.stringify({ event: 'digest-gate.config_error', message: err.message }))
  return Response.json(
    { error: 'misconfigured', message: 'the gate is misconfigured: see its log' },
    { status: 500, headers: { 'cache-control': 'no-store' } }
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
        return misconfigured(err)
      }
      apps.set(env, app)
    }
    return app.fetch(request, env, ctx)
  },
} satisfies ExportedHandler<GateEnv>
