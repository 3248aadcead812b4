/**
 * `npm run serve` (scripts/stack/stack.ts, backend 'workerd'): the production bundles, gate and
 * origin on plain workerd, the authority on Miniflare, sharing the store layout of wrangler dev
 * and the users CLI. A user the CLI adds while the stack runs can log in at once; every secret
 * reaches the gate (the identity assertion is signed); the gate keeps its security contexts
 * across a restart.
 */
import { mkdtempSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePorts } from '../../scripts/stack/ports.ts'
import { readDotenv } from '../../scripts/stack/secrets.ts'
import { type Stack, startStack } from '../../scripts/stack/stack.ts'
import { runUsersCli } from '../../scripts/stack/users-cli.ts'
import { e2e } from './support/context.ts'
import { digestSession, send } from './support/digest-session.ts'
import { login } from './support/login.ts'
import { ALICE } from './support/users.ts'

let stack: Stack
let persistTo: string

describe('serve: production bundles on workerd', () => {
  beforeAll(async () => {
    const dir = mkdtempSync(join(e2e().runDir, 'serve-'))
    persistTo = join(dir, 'state')
    const [gatePort, authorityPort, originPort] = (await freePorts(3)) as [number, number, number]
    stack = await startStack({
      backend: 'workerd',
      quiet: true,
      gatePort,
      authorityPort,
      originPort,
      persistTo,
      secrets: { gate: join(dir, 'gate.env'), authority: join(dir, 'authority.env') },
    })
  })
  afterAll(async () => {
    await stack?.stop()
  })

  it('logs in a seeded demo user; the origin gets the identity and an assertion it verifies', async () => {
    const result = await login(`${stack.urls.gate}/private/served`, ALICE.name, ALICE.password)
    expect(result.status).toBe(200)
    expect(result.echo?.authHeaders['x-auth-user']).toBe(ALICE.name)
    expect(result.echo?.authHeaders['x-auth-assertion']).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/)
    // Verified by the origin with the gate's published keys alone (GATE_URL reaches it on workerd).
    expect(result.echo?.assertion).toMatchObject({ verified: true, claims: { sub: ALICE.name } })
    expect(result.echo?.authorizationReceived).toBe(false)
  })

  it('sees a user the CLI adds while it runs (same KV store)', async () => {
    await runUsersCli(['add', 'carol'], { persistTo, input: 'carol-password\n' })
    const result = await login(`${stack.urls.gate}/private/carol`, 'carol', 'carol-password')
    expect(result.status).toBe(200)
    expect(result.echo?.authHeaders['x-auth-user']).toBe('carol')
  })

  it('answers the authority health check', async () => {
    expect((await fetch(`${stack.urls.authority}/healthz`)).status).toBe(200)
  })

  it("keeps the gate's security contexts across a restart, stored where wrangler dev stores them", async () => {
    const clientIp = '198.51.100.40'
    const session = digestSession(stack.urls.gate, ALICE.name, ALICE.password, { clientIp })
    expect((await session.get('/private/before')).status).toBe(200)
    const captured = await session.authorizationFor('GET', '/private/captured')
    const replay = () =>
      send(`${stack.urls.gate}/private/captured`, clientIp, {
        headers: { authorization: captured },
      })
    expect((await replay()).status).toBe(200)
    const verifications = await verifyTotal()
    // A quiet spell: the context object then writes its exact nc state (after 2 s).
    await new Promise((resolve) => setTimeout(resolve, 2500))
    const pid = stack.gate.process().pid
    await stack.gate.restart()
    expect(stack.gate.process().pid).not.toBe(pid)

    expect((await session.get('/private/after')).status).toBe(200)
    expect((await replay()).status).toBe(401)
    // The session is still on its first (fresh) nonce: in the new process the authority vouches
    // for the user once before the context is called; the replay then meets the context alone.
    expect(await verifyTotal()).toBe(verifications + 1)
    const contexts = readdirSync(join(persistTo, 'v3', 'do', 'digest-gate-SecurityContext'))
    expect(contexts.filter((file) => /^[0-9a-f]{64}\.sqlite$/.test(file)).length).toBeGreaterThan(0)
  })
})

/** The authority's verifications so far (its /metrics, with this stack's METRICS_TOKEN). */
async function verifyTotal(): Promise<number> {
  const token = readDotenv(stack.secrets.authority).get('METRICS_TOKEN')
  const response = await fetch(`${stack.urls.authority}/metrics`, {
    headers: { Authorization: `Bearer ${token}` },
  })
  let total = 0
  for (const match of (await response.text()).matchAll(
    /^authority_verify_total\{[^}]*\} (\d+)$/gm
  )) {
    total += Number(match[1])
  }
  return total
}
