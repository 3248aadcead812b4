/** Row (a): a Hono worker that forwards every request to the origin, no authentication. */
import { Hono } from 'hono'
import { type BenchEnv, forwardToOrigin } from '../proxy.ts'

const app = new Hono<{ Bindings: BenchEnv }>()
app.all('*', (c) => forwardToOrigin(c.req.raw, c.env.ORIGIN_URL))

export default app
