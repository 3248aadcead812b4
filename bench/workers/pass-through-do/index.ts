/**
 * Rows (a') and (a''): the pass-through plus one Durable Object RPC per request, the floor of any
 * design that keeps nc state consistent. (a') calls an empty method; (a'') one that writes a row
 * to the object's SQLite storage, as recording an nc must. The object is chosen by the
 * `x-bench-key` header, so the bench can spread calls like the gate's sessions (one object per
 * session) or focus them; `x-bench-write: 1` selects the writing method.
 */
import { DurableObject } from 'cloudflare:workers'
import { Hono } from 'hono'
import { type BenchEnv, forwardToOrigin } from '../proxy.ts'

export class Empty extends DurableObject {
  private count = 0

  ping(): void {}

  /** One small write, like an nc window's: a counter in a one-row table. */
  record(): number {
    if (this.count === 0) {
      this.ctx.storage.sql.exec(
        'CREATE TABLE IF NOT EXISTS seen (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)'
      )
    }
    this.count += 1
    this.ctx.storage.sql.exec('INSERT OR REPLACE INTO seen (id, n) VALUES (1, ?)', this.count)
    return this.count
  }
}

type Env = BenchEnv & { EMPTY: DurableObjectNamespace<Empty> }

const app = new Hono<{ Bindings: Env }>()
app.all('*', async (c) => {
  const stub = c.env.EMPTY.getByName(c.req.header('x-bench-key') ?? 'default')
  if (c.req.header('x-bench-write') === '1') await stub.record()
  else await stub.ping()
  return forwardToOrigin(c.req.raw, c.env.ORIGIN_URL)
})

export default app
