/**
 * The harness itself: the helpers that fault suites build on (own gate with restart on the same
 * persist directory, own stack whose authority can be stopped and started) do what they say.
 */
import { afterAll, describe, expect, it } from 'vitest'
import type { Stack } from '../../scripts/stack/stack.ts'
import { login } from './support/login.ts'
import { startOwnGate, startOwnStack } from './support/stack.ts'
import { ALICE } from './support/users.ts'

describe('harness: own gate', () => {
  it('serves logins, and again after restart() on the same persist directory', async () => {
    const gate = await startOwnGate('gate-harness')
    try {
      const first = await login(`${gate.url}/private/one`, ALICE.name, ALICE.password)
      expect(first.status).toBe(200)
      expect(first.echo?.authHeaders['x-auth-user']).toBe(ALICE.name)
      const pid = gate.process().pid
      await gate.restart()
      expect(gate.process().pid).not.toBe(pid)
      const second = await login(`${gate.url}/private/two`, ALICE.name, ALICE.password)
      expect(second.status).toBe(200)
    } finally {
      await gate.stop()
    }
    expect(gate.process().running()).toBe(false)
  })
})

describe('harness: own stack', () => {
  let stack: Stack | undefined
  afterAll(async () => {
    await stack?.stop()
  })

  it('starts seeded; its authority can be stopped (reported by died) and started again', async () => {
    stack = await startOwnStack('stack-harness')
    expect((await login(`${stack.urls.gate}/private/a`, ALICE.name, ALICE.password)).status).toBe(
      200
    )
    const health = await fetch(`${stack.urls.authority}/healthz`)
    expect(health.status).toBe(200)

    await stack.authority.stop()
    await expect(stack.died).resolves.toMatchObject({ name: 'authority' })
    await expect(fetch(`${stack.urls.authority}/healthz`)).rejects.toThrow()

    await stack.authority.restart()
    expect((await fetch(`${stack.urls.authority}/healthz`)).status).toBe(200)
    expect((await login(`${stack.urls.gate}/private/b`, ALICE.name, ALICE.password)).status).toBe(
      200
    )
  })
})
