/**
 * The gate worker: wrangler.toml vars and secrets -> canonical path -> route rules -> digestAuth
 * -> origin. Admin routes (when ADMIN_TOKEN is set) come first and are not behind Digest.
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { ADMIN_PREFIX, adminRoutes } from './gate/admin.ts'
import { httpAuthority } from './gate/authority-client.ts'
import { durableObjectBrakes } from './gate/brake-store.ts'
import {
  ConfigError,
  type GateConfig,
  type GateSecrets,
  type GateVars,
  readConfig,
} from './gate/config.ts'
import { durableObjectContexts } from './gate/context-store.ts'
import { forwardToOrigin } from './gate/forward.ts'
import { type DigestAuthVariables, digestAuth } from './gate/middleware.ts'
import type { DigestAuthOptions } from './gate/options.ts'
import { canonicalizePath } from './gate/request-path.ts'
import { resolveOptions } from './gate/resolve-options.ts'
import { isAllowed, matchRoute } from './gate/routes.ts'

export { Brake } from './gate/brake.ts'
export { SecurityContext } from './gate/security-context.ts'
export { UserContexts } from './gate/user-contexts.ts'

type GateEnv = Env &
  GateVars &
  GateSecrets & {
    /** Optional service binding to the authority (instead of AUTHORITY_URL over the network). */
    AUTHORITY?: Fetcher
  }

type App = Hono<{ Bindings: GateEnv; Variables: DigestAuthVariables }>

/** The app is built once per isolate and configuration. */
const apps = new WeakMap<object, App>()

export function buildGate(env: GateEnv): App {
  const config = readConfig(env, env.AUTHORITY !== undefined)
  const contexts = durableObjectContexts(env.CONTEXTS, env.USER_CONTEXTS)
  const app: App = new Hono()

  const authOptions: DigestAuthOptions = {
    realm: config.realm,
    serverId: config.serverId,
    nonceKeys: config.nonceKeys,
    authority: httpAuthority({
      url: config.authorityUrl ?? 'https://authority/v1/verify',
      token: config.authorityToken,
      timeoutMs: config.authorityTimeoutMs,
      fetcher: config.authorityUrl ? undefined : env.AUTHORITY,
    }),
    contexts,
    algorithms: config.algorithms,
    qop: config.qop,
    userhash: config.userhash,
    nonceLifetime: config.nonceLifetime,
    nextnonceLead: config.nextnonceLead,
    replay: config.replay,
    windowSize: config.windowSize,
    validateUri: config.validateUri,
    idleTimeout: config.idleTimeout,
    maxLifetime: config.maxLifetime,
    revalidateAfter: config.revalidateAfter,
    revalidateGrace: config.revalidateGrace,
    maxAuthIntBody: config.maxAuthIntBody,
    binding: config.binding,
    brakes: config.brakes
      ? { store: durableObjectBrakes(env.BRAKE_COUNTERS), policy: config.brakePolicy }
      : false,
  }
  if (config.adminToken) {
    app.route(
      ADMIN_PREFIX,
      adminRoutes(config.adminToken, () => contexts, resolveOptions(authOptions).policy)
    )
  }
  const auth = digestAuth<{ Bindings: GateEnv; Variables: DigestAuthVariables }>(authOptions)

  // One canonical path per request: rules match it, digestAuth checks `uri` against it, and it
  // alone is forwarded.
  app.use('*', async (c, next) => {
    const { pathname } = new URL(c.req.url)
    const canonical = canonicalizePath(pathname, { allowParameters: config.allowPathParameters })
    if (!canonical.ok) {
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
    if ('access' in rule && rule.access === 'public') return next()
    return auth(c, async () => {
      const { principal } = c.var.digestAuth
      if (!isAllowed(rule, principal.groups)) {
        throw new HTTPException(403, {
          res: Response.json(
            { error: 'forbidden', message: 'your groups do not grant access to this path' },
            { status: 403, headers: { 'cache-control': 'no-store' } }
          ),
        })
      }
      await next()
    })
  })

  const toOrigin = forwardOptions(config)
  app.all('*', (c) =>
    forwardToOrigin(
      c.req.raw,
      c.get('digestAuth')?.principal,
      toOrigin,
      Math.floor(Date.now() / 1000),
      c.get('requestPath')
    )
  )

  app.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse()
    console.log(
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

function forwardOptions(config: GateConfig) {
  return {
    origin: config.originUrl,
    headers: config.identityHeaders,
    assertionKey: config.assertionKey,
    issuer: config.serverId,
    realm: config.realm,
    timeoutMs: config.originTimeoutMs,
    stripHeaders: config.stripHeaders,
  }
}

export default {
  fetch(request, env, ctx) {
    let app = apps.get(env)
    if (!app) {
      try {
        app = buildGate(env)
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err
        // The details (which may quote configured values) go to the operator's log only.
        console.error(JSON.stringify({ event: 'digest-gate.config_error', message: err.message }))
        return Response.json(
          { error: 'misconfigured', message: 'the gate is misconfigured: see its log' },
          { status: 500, headers: { 'cache-control': 'no-store' } }
        )
      }
      apps.set(env, app)
    }
    return app.fetch(request, env, ctx)
  },
} satisfies ExportedHandler<GateEnv>
