/**
 * What an origin and an operator expect from the real gate (wrangler dev, the shared default
 * gate): a CORS preflight to a protected path reaches the origin unauthenticated (the origin owns
 * its CORS policy) while any other OPTIONS is challenged; X-Forwarded-For names the client; the
 * health and readiness endpoints answer, and the key set is public.
 */
import { describe, expect, it } from 'vitest'
import { e2e } from './support/context.ts'
import { digestSession, send } from './support/digest-session.ts'
import { parseEcho } from './support/echo.ts'
import { ALICE } from './support/users.ts'

const CLIENT_IP = '198.51.100.80'

describe('CORS preflights', () => {
  it('reach the demo origin unauthenticated, without identity; other OPTIONS are challenged', async () => {
    const gate = e2e().gates.default
    const preflight = await send(`${gate}/private/api/items`, CLIENT_IP, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'PUT',
        'x-auth-user': 'mallory',
      },
    })
    expect(preflight.status).toBe(200)
    const echo = parseEcho(preflight.body)
    expect(echo).toMatchObject({ method: 'OPTIONS', path: '/private/api/items' })
    expect(echo.authHeaders).toEqual({})
    const plain = await send(`${gate}/private/api/items`, CLIENT_IP, { method: 'OPTIONS' })
    expect(plain.status).toBe(401)
    expect(plain.headers.get('www-authenticate')).toMatch(/^Digest /)
  })
})

describe('forwarding', () => {
  it('appends the address the gate saw to the X-Forwarded-For the client sent', async () => {
    const gate = e2e().gates.default
    const alice = digestSession(gate, ALICE.name, ALICE.password, { clientIp: CLIENT_IP })
    const answer = await alice.get('/private/xff')
    expect(answer.status).toBe(200)
    // The echo lists only x-auth-* headers; the public route shows the rest.
    const open = await send(`${gate}/public/xff`, CLIENT_IP, {
      headers: { 'x-forwarded-for': '10.1.2.3' },
    })
    expect(open.status).toBe(200)
    expect(parseEcho(open.body).forwardedFor).toBe(`10.1.2.3, ${CLIENT_IP}`)
  })
})

describe('operations', () => {
  it('healthz and readyz answer 200 on a working stack; the key set is public and cacheable', async () => {
    const gate = e2e().gates.default
    const health = await fetch(`${gate}/.digest-gate/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ status: 'ok' })
    const ready = await fetch(`${gate}/.digest-gate/readyz`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toEqual({ status: 'ready' })
    const jwks = await fetch(`${gate}/.digest-gate/jwks.json`)
    expect(jwks.status).toBe(200)
    expect(jwks.headers.get('cache-control')).toMatch(/public/)
    const keys = (await jwks.json()) as { keys: { kty: string; d?: string }[] }
    expect(keys.keys.length).toBeGreaterThan(0)
    expect(keys.keys.every((k) => k.d === undefined)).toBe(true)
  })
})
