// Node micro-bench of the middleware's JS cost: public vs authenticated (replay off).
import { Hono } from 'hono'
import { digestAuth } from '../src/entries/index.ts'
import { createDigestClient } from '../src/digest/client.ts'

const N = Number(process.env.N ?? 20000)
const app = new Hono()
const auth = digestAuth({ realm: 'bench', users: { alice: 'wonderland' }, replay: (process.env.REPLAY ?? 'off') as 'off', algorithms: ['SHA-256'] } as never)
app.use('/private/*', auth)
app.all('*', () => new Response('ok'))
const base = 'http://gate.test'
const client = createDigestClient({ username: 'alice', password: 'wonderland', fetch: (i, init) => app.fetch(new Request(i, init)) })
const first = await client.fetch(`${base}/private/x`)
if (first.status !== 200) throw new Error(`login ${first.status}`)
const headers: string[] = []
for (let i = 0; i < N * 2; i++) headers.push((await client.authorizationFor('GET', `${base}/private/x`)) as string)
async function run(kind: 'public' | 'private', n: number, off: number) {
  const t = process.cpuUsage()
  for (let i = 0; i < n; i++) {
    const req = kind === 'public' ? new Request(`${base}/public/x`) : new Request(`${base}/private/x`, { headers: { authorization: headers[off + i] as string } })
    const res = await app.fetch(req)
    if (res.status !== 200) throw new Error(`${kind} ${res.status}`)
  }
  const d = process.cpuUsage(t)
  return (d.user + d.system) / n
}
await run('public', 2000, 0)
const half = N / 2
for (let r = 0; r < 3; r++) {
  const pub = await run('public', half, 0)
  const priv = await run('private', half, N + r * 0) // headers in nc order
  console.log(`public ${pub.toFixed(1)} µs/req, private ${priv.toFixed(1)} µs/req, diff ${(priv - pub).toFixed(1)}`)
  break
}
