/** Row (b): the pass-through behind Hono's basicAuth (the bench's user and password). */
import { Hono, type MiddlewareHandler } from 'hono'
import { basicAuth } from 'hono/basic-auth'
import { type BenchEnv, forwardToOrigin } from '../proxy.ts'

type Env = BenchEnv & { BASIC_USER: string; BASIC_PASSWORD: string }

/** Built once per isolate from the vars, as an app with fixed credentials would. */
let auth: MiddlewareHandler | undefined

const app = new Hono<{ Bindings: Env }>()
app.use('*', (c, next) => {
  auth ??= basicAuth({ username: c.env.BASIC_USER, password: c.env.BASIC_PASSWORD })
  return auth(c, next)
})
app.all('*', (c) => forwardToOrigin(c.req.raw, c.env.ORIGIN_URL))

export default app
