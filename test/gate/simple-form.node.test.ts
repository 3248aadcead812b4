/**
 * The simple form under plain Node: digest-gate's middleware loads and works with no Workers
 * runtime (no `cloudflare:workers`), as `npm install digest-gate hono` users will run it.
 */
import { Hono } from 'hono'
import { expect, it } from 'vitest'
import { createDigestClient } from '../../src/digest/client.ts'
import { digestAuth } from '../../src/entries/index.ts'

it('logs a user in, refuses a wrong password and a replay, under Node', async () => {
  const app = new Hono()
  app.use('*', digestAuth({ realm: 'node', users: { alice: 'wonderland' }, onDecision: () => {} }))
  app.get('/me', (c) => c.text(c.var.digestAuth.principal.name))
  const sent: string[] = []
  const as = (password: string) =>
    createDigestClient({
      username: 'alice',
      password,
      fetch: async (input, init) => {
        const req = new Request(input as RequestInfo, init)
        const h = req.headers.get('authorization')
        if (h) sent.push(h)
        return app.request(req)
      },
    })
  const ok = await as('wonderland').fetch('http://node.test/me')
  expect(ok.status).toBe(200)
  expect(await ok.text()).toBe('alice')
  const replay = await app.request('http://node.test/me', {
    headers: { authorization: sent.at(-1) as string },
  })
  expect(replay.status).toBe(401)
  expect((await as('nope').fetch('http://node.test/me')).status).toBe(401)
})
