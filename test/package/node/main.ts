/**
 * The simple form in Node, as a user of the package writes it: a Hono app guarded by digestAuth,
 * logged into with digest-gate/client through app.request (no port). Throws on the first
 * expectation that fails; prints one line per check that held.
 */
import assert from 'node:assert/strict'
import { type DecisionLog, digestAuth } from 'digest-gate'
import { createDigestClient } from 'digest-gate/client'
import { Hono } from 'hono'

const realm = 'package-check'
const decisions: DecisionLog[] = []

// The basicAuth-simple form: users, and nothing else to set up. c.var.digestAuth is typed.
const app = new Hono()
app.use(
  '/private/*',
  digestAuth({
    realm,
    users: { alice: 'wonderland' },
    onDecision: (entry) => decisions.push(entry),
  })
)
app.get('/private/me', (c) =>
  c.json({ user: c.var.digestAuth.principal.name, verifiedBy: c.var.digestAuth.verifiedBy })
)

const url = 'http://localhost/private/me'
const throughApp: typeof fetch = async (input, init) =>
  app.request(input instanceof Request ? input : input.toString(), init)

async function check(name: string, run: () => Promise<void>): Promise<void> {
  try {
    await run()
  } catch (error) {
    console.error(`decisions so far: ${JSON.stringify(decisions)}`)
    throw new Error(`${name}: ${error instanceof Error ? error.message : String(error)}`)
  }
  console.log(`ok - ${name}`)
}

await check('no credentials: 401 with a Digest challenge', async () => {
  const res = await app.request(url)
  assert.equal(res.status, 401)
  const challenge = res.headers.get('www-authenticate') ?? ''
  assert.match(challenge, /^Digest /)
  assert.match(challenge, new RegExp(`realm="${realm}"`))
})

const alice = createDigestClient({ username: 'alice', password: 'wonderland', fetch: throughApp })
await check('right password: 200, verified by the authority', async () => {
  const res = await alice.fetch(url)
  assert.equal(res.status, 200)
  assert.deepEqual(await res.json(), { user: 'alice', verifiedBy: 'authority' })
  assert.ok(res.headers.get('authentication-info'), 'Authentication-Info expected')
})
await check('next request: 200, verified from the cached session key', async () => {
  const res = await alice.fetch(url)
  assert.equal(res.status, 200)
  assert.deepEqual(await res.json(), { user: 'alice', verifiedBy: 'context' })
})

const mallory = createDigestClient({ username: 'alice', password: 'guess', fetch: throughApp })
await check('wrong password: 401', async () => {
  const res = await mallory.fetch(url)
  assert.equal(res.status, 401)
  assert.match(res.headers.get('www-authenticate') ?? '', /^Digest /)
})
