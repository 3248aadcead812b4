/**
 * What an origin and an operator expect from a proxy in front of them: CORS preflights reach the
 * origin (which owns its CORS policy), X-Forwarded-For names the client, health and readiness
 * endpoints, log levels, and the gate's own prefix never forwarded.
 */
import { createExecutionContext } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { Hono } from 'hono'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { digestAuth } from '../../src/entries/index.ts'
import { decisionLogger, dropsRoutine } from '../../src/gate/decision-log.ts'
import worker from '../../src/index.ts'
import {
  captureDecisions,
  client,
  type FakeAuthority,
  type FakeOrigin,
  GATE,
  gate,
  installPeers,
} from './fakes.ts'

let authority: FakeAuthority
let origin: FakeOrigin

beforeEach(() => {
  ;({ authority, origin } = installPeers())
})
afterEach(() => {
  vi.restoreAllMocks()
})

const preflight = (path: string, extra: Record<string, string> = {}) =>
  new Request(`${GATE}${path}`, {
    method: 'OPTIONS',
    headers: {
      origin: 'https://app.example',
      'access-control-request-method': 'PUT',
      'access-control-request-headers': 'content-type',
      ...extra,
    },
  })

describe('CORS preflights', () => {
  it('reach the origin unauthenticated on a protected path, without identity', async () => {
    const res = await gate()(preflight('/private/api', { 'x-auth-user': 'mallory' }))
    expect(res.status).toBe(200)
    expect(origin.requests).toHaveLength(1)
    expect(origin.requests[0]).toMatchObject({ method: 'OPTIONS', path: '/private/api' })
    expect(origin.requests[0]?.headers['x-auth-user']).toBeUndefined()
    expect(authority.calls).toBe(0)
  })

  it('any other OPTIONS stays protected, and a rule can protect preflights too', async () => {
    const g = gate()
    const plain = await g(new Request(`${GATE}/private/api`, { method: 'OPTIONS' }))
    expect(plain.status).toBe(401)
    const strict = gate({
      ROUTES: '[{"path":"/private/*","access":"authenticated","preflight":false}]',
    })
    expect((await strict(preflight('/private/api'))).status).toBe(401)
    expect(origin.requests).toHaveLength(0)
  })

  it('pass digestAuth in a plain app to the next handler (a CORS handler answers them)', async () => {
    const app = new Hono()
    app.use('*', digestAuth({ realm: 'r', users: { alice: 'x' }, onDecision: () => {} }))
    app.options('*', (c) => c.body(null, 204, { 'access-control-allow-origin': '*' }))
    const res = await app.request(preflight('/api'))
    expect(res.status).toBe(204)
    expect(res.headers.get('access-control-allow-origin')).toBe('*')
    const guarded = new Hono()
    guarded.use('*', digestAuth({ realm: 'r', users: {}, passPreflights: false }))
    guarded.options('*', (c) => c.body(null, 204))
    expect((await guarded.request(preflight('/api'))).status).toBe(401)
  })
})

describe('forwarding headers', () => {
  it('appends the address the gate saw to X-Forwarded-For, keeping what the client sent first', async () => {
    const res = await gate()(
      new Request(`${GATE}/public/x`, {
        headers: { 'x-forwarded-for': '10.0.0.1', 'cf-connecting-ip': '198.51.100.7' },
      })
    )
    expect(res.status).toBe(200)
    expect(origin.requests[0]?.headers['x-forwarded-for']).toBe('10.0.0.1, 198.51.100.7')
    await gate()(
      new Request(`${GATE}/public/y`, { headers: { 'cf-connecting-ip': '198.51.100.8' } })
    )
    expect(origin.requests[1]?.headers['x-forwarded-for']).toBe('198.51.100.8')
  })

  it('names the host and scheme the client used, and keeps the query as sent', async () => {
    await gate()(new Request('http://gate.test:8080/public/a%20b?q=1&r=%2F&s'))
    expect(origin.requests[0]?.path).toBe('/public/a%20b?q=1&r=%2F&s')
    expect(origin.requests[0]?.headers['x-forwarded-host']).toBe('gate.test:8080')
    expect(origin.requests[0]?.headers['x-forwarded-proto']).toBe('http')
    await gate()(new Request(`${GATE}/public/z?`))
    expect(origin.requests[1]?.path).toBe('/public/z')
    expect(origin.requests[1]?.headers['x-forwarded-host']).toBe('gate.test')
    expect(origin.requests[1]?.headers['x-forwarded-proto']).toBe('https')
  })

  it('puts the path under the path of ORIGIN_URL, never beside or above it', async () => {
    for (const base of ['https://origin.test/app', 'https://origin.test/app/']) {
      await gate({ ORIGIN_URL: base })(new Request(`${GATE}/public/x/../y?k=v`))
    }
    expect(origin.requests.map((r) => r.path)).toEqual(['/app/public/y?k=v', '/app/public/y?k=v'])
  })
})

describe('health and readiness', () => {
  it('healthz: 200 with a valid configuration, 503 without, and no secret in either', async () => {
    const ok = await gate()(new Request(`${GATE}/.digest-gate/healthz`))
    expect(ok.status).toBe(200)
    expect(await ok.json()).toEqual({ status: 'ok' })
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const broken = await worker.fetch(
      new Request(`${GATE}/.digest-gate/healthz`),
      { ...env, NONCE_KEY: 'short-secret' } as never,
      createExecutionContext()
    )
    expect(broken.status).toBe(503)
    expect(await broken.text()).toBe('{"status":"misconfigured"}')
    expect(origin.requests).toHaveLength(0)
  })

  it('readyz: 200 while the authority accepts this gate, 503 + Retry-After when it does not', async () => {
    const g = gate()
    const ready = await g(new Request(`${GATE}/.digest-gate/readyz`))
    expect(ready.status).toBe(200)
    // The probe verified nobody, and is reused for a few seconds.
    expect(authority.calls).toBe(1)
    await g(new Request(`${GATE}/.digest-gate/readyz`))
    expect(authority.calls).toBe(1)
    authority.mode = 'down'
    const down = await gate()(new Request(`${GATE}/.digest-gate/readyz`))
    expect(down.status).toBe(503)
    expect(Number(down.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await down.json()).toEqual({ status: 'unready', reason: 'unreachable' })
    const refused = gate({ AUTHORITY_TOKEN: 'not-the-token' })
    authority.mode = 'ok'
    expect(await (await refused(new Request(`${GATE}/.digest-gate/readyz`))).json()).toEqual({
      status: 'unready',
      reason: 'token_refused',
    })
  })

  it('the gate’s own prefix is never forwarded, in any spelling', async () => {
    const g = gate()
    for (const path of ['/.digest-gate/nothing', '/.DIGEST-GATE/healthz/x', '/.digest-gate']) {
      const res = await g(new Request(`${GATE}${path}`))
      expect(res.status, path).toBe(404)
    }
    expect(origin.requests).toHaveLength(0)
  })
})

describe('LOG_LEVEL', () => {
  const run = async (level: string) => {
    vi.restoreAllMocks()
    const peers = installPeers()
    const calls = { log: 0, warn: 0, error: 0 }
    for (const k of ['log', 'warn', 'error'] as const) {
      vi.spyOn(console, k).mockImplementation(() => {
        calls[k]++
      })
    }
    const g = gate({ LOG_LEVEL: level })
    const alice = client(g, 'alice', 'wonderland')
    await alice.fetch('/private/ok') // a challenge (denial) then a login (info)
    peers.origin.down = true
    await alice.fetch('/private/origin-down') // verified at the edge (routine), an origin fault
    return calls
  }

  it('all: acceptances on log, refusals on warn, faults on error; logins: no routine line; denials: no log; off: nothing', async () => {
    expect(await run('all')).toEqual({ log: 2, warn: 1, error: 1 })
    expect(await run('logins')).toEqual({ log: 1, warn: 1, error: 1 })
    expect(await run('denials')).toEqual({ log: 0, warn: 1, error: 1 })
    expect(await run('off')).toEqual({ log: 0, warn: 0, error: 0 })
  })

  it('the middleware may skip a routine record only for a default logger whose level drops it', () => {
    for (const level of ['logins', 'denials', 'off'] as const) {
      expect(dropsRoutine(decisionLogger(level)), level).toBe(true)
    }
    expect(dropsRoutine(decisionLogger('all'))).toBe(false)
    expect(dropsRoutine(() => {})).toBe(false)
  })

  it('every decision line carries cf-ray where Cloudflare sent one', async () => {
    const decisions = captureDecisions()
    await gate()(new Request(`${GATE}/private/r`, { headers: { 'cf-ray': '8f00ba11-AMS' } }))
    expect(decisions.at(-1)?.ray).toBe('8f00ba11-AMS')
  })
})
