/** digestAuth() in one's own Hono app, as the README shows. */
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import { createDigestClient } from '../../src/digest/client.ts'
import { durableObjectContexts } from '../../src/entries/cloudflare.ts'
import { digestAuth, httpAuthority } from '../../src/entries/index.ts'
import { installPeers } from './fakes.ts'

beforeEach(() => {
  installPeers()
})
afterEach(() => {
  vi.restoreAllMocks()
})

function app() {
  const a = new Hono()
  a.use(
    '/private/*',
    digestAuth({
      realm: 'digest-gate',
      serverId: 'gate-test',
      nonceKeys: { current: { id: 1, secret: 'k'.repeat(32) } },
      authority: httpAuthority({
        url: 'https://authority.test/v1/verify',
        token: (env as unknown as { AUTHORITY_TOKEN: string }).AUTHORITY_TOKEN,
      }),
      contexts: durableObjectContexts(env.CONTEXTS, env.USER_CONTEXTS),
      onDecision: () => {},
    })
  )
  a.get('/private/me', (c) => c.json(c.var.digestAuth.principal))
  // Response.redirect has immutable headers: Authentication-Info must still be added.
  a.get('/private/away', () => Response.redirect('https://elsewhere.test/', 302))
  return a
}

it('exposes the principal as c.var.digestAuth and answers with Authentication-Info', async () => {
  const a = app()
  const alice = createDigestClient({
    username: 'alice',
    password: 'wonderland',
    fetch: async (input, init) => a.request(new Request(input as RequestInfo, init)),
  })
  const me = await alice.fetch('https://gate.test/private/me')
  expect(me.status).toBe(200)
  expect(await me.json()).toEqual({ name: 'alice', groups: ['admin'] })
  const away = await alice.fetch('https://gate.test/private/away', { redirect: 'manual' })
  expect(away.status).toBe(302)
  expect(away.headers.get('authentication-info')).toMatch(/rspauth="[0-9a-f]{64}"/)
})
