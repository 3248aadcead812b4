/**
 * `npm run serve` (scripts/lib/stack-serve.ts): the production bundles on plain workerd, sharing
 * the store layout of wrangler dev and the users CLI. A user the CLI adds while the stack runs can
 * log in at once; every secret reaches the gate (the identity assertion is signed).
 */
import { mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePorts } from '../../scripts/lib/stack-ports.ts'
import { type ServedStack, serveStack } from '../../scripts/lib/stack-serve.ts'
import { runUsersCli } from '../../scripts/lib/stack-users.ts'
import { e2e } from './support/context.ts'
import { login } from './support/login.ts'
import { ALICE } from './support/users.ts'

describe('serve: production bundles on workerd', () => {
  let stack: ServedStack
  let persistTo: string

  beforeAll(async () => {
    const dir = mkdtempSync(join(e2e().runDir, 'serve-'))
    persistTo = join(dir, 'state')
    const [gatePort, authorityPort, originPort] = (await freePorts(3)) as [number, number, number]
    stack = await serveStack({
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

  it('logs in a seeded demo user; the origin gets the identity and a signed assertion', async () => {
    const result = await login(`${stack.urls.gate}/private/served`, ALICE.name, ALICE.password)
    expect(result.status).toBe(200)
    expect(result.echo?.authHeaders['x-auth-user']).toBe(ALICE.name)
    expect(result.echo?.authHeaders['x-auth-assertion']).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/)
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
})
