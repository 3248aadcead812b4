/**
 * Reading the demo origin's answer (demo-origin/src/index.ts): what the gate forwarded. Every
 * successful login must reach the origin with the user's identity, an assertion naming the user
 * that verifies with the gate's published keys alone, and without Authorization.
 */
import { createHash } from 'node:crypto'
import { expect } from 'vitest'
import type { EchoResponse } from '../../../demo-origin/src/echo.ts'

/** The demo origin's answer: one shape, declared where it is produced. */
export type Echo = EchoResponse

export function parseEcho(text: string): Echo {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    const clean = text.slice(0, 80).replace(/[^\x20-\x7e]/g, '?')
    throw new Error(`not the demo origin's JSON (${text.length} chars): ${clean}`)
  }
  expect(value).toMatchObject({ origin: 'digest-gate-demo-origin' })
  return value as Echo
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Why the echo's assertion does not name `user` as verified; undefined when it does. */
export function assertionProblem(echo: Echo, user: string): string | undefined {
  const check = echo.assertion
  if (!check) return 'no assertion reached the origin'
  if (!check.verified) return `the assertion did not verify: ${check.error}`
  if (check.claims.sub !== user) return `the assertion names ${check.claims.sub}`
  return undefined
}

/**
 * The origin saw `user` as the authenticated identity, in a verified assertion too, and no
 * Authorization header.
 */
export function expectForwardedAs(echo: Echo, user: string): void {
  expect(echo.authHeaders['x-auth-user']).toBe(user)
  expect(echo.assertion).toEqual({
    verified: true,
    claims: expect.objectContaining({ sub: user, realm: expect.any(String) }),
  })
  expect(echo.authorizationReceived).toBe(false)
}
