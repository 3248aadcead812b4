/**
 * The edge form, as a user of the package writes it: a Worker that exports the Durable Object
 * classes from digest-gate/cloudflare and guards /private/* with digestAuth.
 */
import { digestAuth, httpAuthority } from 'digest-gate'
import { durableObjectBrakes, durableObjectContexts } from 'digest-gate/cloudflare'
import { Hono, type MiddlewareHandler } from 'hono'

export { Brake, SecurityContext, UserContexts } from 'digest-gate/cloudflare'

type AppEnv = { Bindings: Env }

const app = new Hono<AppEnv>()

// Built once per isolate: it caches the imported nonce keys.
let auth: MiddlewareHandler | undefined
app.use('/private/*', (c, next) => {
  auth ??= digestAuth({
    realm: c.env.REALM,
    serverId: 'edge-check',
    nonceKeys: { current: { id: 1, secret: c.env.NONCE_KEY } },
    authority: httpAuthority({ url: c.env.AUTHORITY_URL, token: c.env.AUTHORITY_TOKEN }),
    contexts: durableObjectContexts(c.env.CONTEXTS, c.env.USER_CONTEXTS),
    brakes: { store: durableObjectBrakes(c.env.BRAKE_COUNTERS) },
  })
  return auth(c, next)
})
app.get('/private/me', (c) => c.json(c.var.digestAuth.principal))

export default app
