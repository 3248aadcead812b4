/**
 * The gate's own endpoints and its link to the authority, attacked by someone who read the code:
 * an authority that redirects, lies about the session key or answers without end; the admin
 * endpoint's token sent where it does not belong; readiness and health answers and their log
 * lines searched for configured values. Each test asserts on what the origin, the redirect target
 * or the log received. The console's own attacks need CONSOLE_GROUP: console-red-team.test.ts.
 */
import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { baseHA1 } from '../../src/digest/algorithms.ts'
import { readNonceFields } from '../../src/digest/tokens.ts'
import { JWKS_PATH } from '../../src/gate/jwks.ts'
import { client, type FakeAuthority, type FakeOrigin, GATE, gate, installPeers } from './fakes.ts'

const TOKEN = (env as unknown as { AUTHORITY_TOKEN: string }).AUTHORITY_TOKEN
const ADMIN_TOKEN = (env as unknown as { ADMIN_TOKEN: string }).ADMIN_TOKEN
const AUTHORITY_URL = (env as unknown as { AUTHORITY_URL: string }).AUTHORITY_URL

let authority: FakeAuthority
let origin: FakeOrigin
/** Every line the gate logged, at any level. */
let logged: string[]

beforeEach(() => {
  ;({ authority, origin } = installPeers())
  logged = []
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      logged.push(args.map(String).join(' '))
    })
  }
})
afterEach(() => {
  vi.restoreAllMocks()
})

/** The authority's honest answers, rewritten by `lie` before the gate reads them. */
function lyingAuthority(lie: (answer: Record<string, unknown>) => Record<string, unknown>): void {
  const honest = authority.handle.bind(authority)
  authority.handle = async (req) => {
    const res = await honest(req)
    const answer = (await res.json()) as Record<string, unknown>
    return Response.json(answer.result === 'ok' ? lie(answer) : answer, { status: res.status })
  }
}

/** A user's first request fails undecided: 503 + Retry-After, nothing forwarded. */
async function expectUndecided(res: Response): Promise<void> {
  expect(res.status).toBe(503)
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0)
  expect(origin.requests).toHaveLength(0)
}

describe('an authority that redirects', () => {
  /**
   * Where the authority sends the gate, and what arrived there. The fetch spy follows a redirect
   * as workerd does unless the request says `redirect: 'manual'` (measured against workerd and
   * two local servers: 301, 302, 307 and 308 are followed to another host with every header,
   * the Authorization too, and the target's answer is returned as the authority's).
   */
  function redirectingAuthority(status: number): { reached: Request[] } {
    const reached: Request[] = []
    const honest = authority.handle.bind(authority)
    authority.handle = async (req) => {
      const res = new Response(null, {
        status,
        headers: { location: 'https://collector.test/v1/verify' },
      })
      if (req.redirect === 'manual') return res
      const body = status === 307 || status === 308 ? await req.text() : undefined
      const followed = new Request('https://collector.test/v1/verify', {
        method: body === undefined ? 'GET' : req.method,
        headers: req.headers,
        body,
      })
      reached.push(followed.clone())
      // The target answers as an authority would (it got the token): the worst case.
      return honest(new Request(AUTHORITY_URL, followed))
    }
    return { reached }
  }

  it.each([301, 302, 307, 308])(
    '%i: the token never reaches the target, the login gets 503 + Retry-After',
    async (status) => {
      const { reached } = redirectingAuthority(status)
      const res = await client(gate(), 'alice', 'wonderland').fetch('/private/r')
      expect(reached).toHaveLength(0)
      await expectUndecided(res)
      expect(logged.join('\n')).toContain('authority_status_')
    }
  )

  it('readyz: unready (status_307), and the probe is not followed either', async () => {
    const { reached } = redirectingAuthority(307)
    const res = await gate()(new Request(`${GATE}/.digest-gate/readyz`))
    expect(res.status).toBe(503)
    expect(await res.json()).toEqual({ status: 'unready', reason: 'status_307' })
    expect(reached).toHaveLength(0)
  })
})

describe('an authority that answers a wrong session key', () => {
  /** The key alice's password gives under another hash, or no key of any hash at all. */
  const wrongKeys: [string, (answer: Record<string, unknown>) => Promise<string>][] = [
    ['an MD5-length key for SHA-256', async () => baseHA1('MD5', 'alice', 'digest-gate', 'x')],
    ['a 33-digit key', async (a) => `${String(a.sessionKey).slice(0, 32)}0`],
    ['a 128-digit key', async (a) => String(a.sessionKey).repeat(2)],
    ['the key of another password', async () => baseHA1('SHA-256', 'alice', 'digest-gate', 'x')],
    ['a key for another realm', async () => baseHA1('SHA-256', 'alice', 'other', 'wonderland')],
  ]

  it.each(wrongKeys)('%s: no session, 503 + Retry-After; the honest key works', async (_, key) => {
    let lying = true
    const honest = authority.handle.bind(authority)
    authority.handle = async (req) => {
      const res = await honest(req)
      const answer = (await res.json()) as Record<string, unknown>
      if (lying && answer.result === 'ok') answer.sessionKey = await key(answer)
      return Response.json(answer)
    }
    const g = gate()
    const alice = client(g, 'alice', 'wonderland')
    await expectUndecided(await alice.fetch('/private/k1'))
    expect(logged.join('\n')).toMatch(/authority_(wrong_key|malformed_answer)/)
    // The same session, once the authority is honest: it logs in, and its next requests are
    // verified at the edge from the key, with no authority call.
    lying = false
    expect((await alice.fetch('/private/k2')).status).toBe(200)
    const calls = authority.calls
    for (const path of ['/private/k3', '/private/k4']) {
      expect((await alice.fetch(path)).status).toBe(200)
    }
    expect(authority.calls).toBe(calls)
  })
})

describe('an authority that answers too much', () => {
  it('an endless answer is read up to 64 KiB, then 503 + Retry-After', async () => {
    let pulled = 0
    authority.handle = async () =>
      new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            pulled++
            controller.enqueue(new Uint8Array(16 * 1024).fill(0x20))
            if (pulled >= 4096) controller.close()
          },
        }),
        { headers: { 'content-type': 'application/json' } }
      )
    await expectUndecided(await client(gate(), 'alice', 'wonderland').fetch('/private/h'))
    // 64 KiB in 16 KiB chunks, and the one that passed it (a chunk or two read ahead).
    expect(pulled).toBeLessThan(10)
    expect(logged.join('\n')).toContain('authority_answer_too_large')
  })

  it('a principal with outer spaces, odd groups and extra fields: the origin reads them exactly', async () => {
    const groups = [' admin', 'admin ', 'admin,ops', 'Admin', '__proto__']
    authority.users.set(' alice', { password: 'pw', groups })
    lyingAuthority((answer) => ({
      ...answer,
      admin: true,
      groups: ['admin'],
      principal: { ...(answer.principal as object), admin: true, role: 'admin' },
    }))
    const impostor = client(gate(), ' alice', 'pw')
    expect((await impostor.fetch('/admin/panel')).status).toBe(403)
    expect((await impostor.fetch('/private/p')).status).toBe(200)
    expect(origin.requests.map((r) => r.path)).toEqual(['/private/p'])
    const seen = origin.requests[0]?.headers ?? {}
    // Read as an origin reads them: a header value trimmed, a list split at commas and trimmed.
    const user = seen['x-auth-user'] ?? ''
    const listed = (seen['x-auth-groups'] ?? '').split(',').map((g) => g.trim())
    expect(user).not.toBe('alice')
    expect(listed).not.toContain('admin')
    expect(decodeURIComponent(user)).toBe(' alice')
    expect(listed.map(decodeURIComponent)).toEqual(groups)
  })
})

describe('the authority token and URL', () => {
  it('never appear in an answer or a log line, whatever the authority does', async () => {
    const modes = ['ok', 'down', 'slow', 'garbage', 'status500'] as const
    const answers: string[] = []
    for (const mode of modes) {
      authority.mode = mode
      const g = gate({ AUTHORITY_TIMEOUT_MS: '200', LOG_LEVEL: 'all' })
      for (const path of ['/.digest-gate/readyz', '/.digest-gate/healthz']) {
        const res = await g(new Request(`${GATE}${path}`))
        answers.push(`${res.status} ${[...res.headers].join(' ')} ${await res.text()}`)
      }
      const res = await client(g, 'alice', 'wonderland').fetch('/private/t')
      answers.push(`${res.status} ${[...res.headers].join(' ')} ${await res.text()}`)
    }
    expect(answers.some((a) => a.startsWith('503'))).toBe(true)
    for (const text of [...answers, ...logged]) {
      expect(text).not.toContain(TOKEN)
      expect(text).not.toContain('authority.test')
    }
  })
})

describe('the admin token', () => {
  /** alice logs in; whatever `attempt` sends, her session must survive it. */
  async function aliceSurvives(attempt: (g: ReturnType<typeof gate>) => Promise<Response>) {
    origin.requests.length = 0
    const g = gate()
    const alice = client(g, 'alice', 'wonderland')
    expect((await alice.fetch('/private/before')).status).toBe(200)
    const res = await attempt(g)
    const calls = authority.calls
    expect((await alice.fetch('/private/after')).status).toBe(200)
    expect(authority.calls).toBe(calls)
    expect(origin.requests.map((r) => r.path)).toEqual(['/private/before', '/private/after'])
    return res
  }
  const revokeAlice = `${GATE}/.digest-gate/admin/users/digest-gate/alice/revoke`

  it.each<[string, string, Record<string, string>]>([
    ['in the query (token=)', `?token=${ADMIN_TOKEN}`, {}],
    ['in the query (access_token=)', `?access_token=${ADMIN_TOKEN}`, {}],
    ['in a cookie', '', { cookie: `token=${ADMIN_TOKEN}` }],
    ['in another header', '', { 'x-admin-token': ADMIN_TOKEN }],
    ['as Basic', '', { authorization: `Basic ${btoa(`admin:${ADMIN_TOKEN}`)}` }],
    ['bare, without Bearer', '', { authorization: ADMIN_TOKEN }],
    ['cut short by one', '', { authorization: `Bearer ${ADMIN_TOKEN.slice(0, -1)}` }],
    ['with one more character', '', { authorization: `Bearer ${ADMIN_TOKEN}0` }],
    ['in upper case', '', { authorization: `Bearer ${ADMIN_TOKEN.toUpperCase()}` }],
    ['twice', '', { authorization: `Bearer ${ADMIN_TOKEN}, Bearer ${ADMIN_TOKEN}` }],
  ])('%s: refused, nothing revoked', async (_, query, headers) => {
    const res = await aliceSurvives((g) =>
      g(new Request(revokeAlice + query, { method: 'POST', headers }))
    )
    expect([400, 401]).toContain(res.status)
  })

  it('never appears in a log line, right or wrong; a right token revokes', async () => {
    const g = gate({ LOG_LEVEL: 'all' })
    const alice = client(g, 'alice', 'wonderland')
    expect((await alice.fetch('/private/1')).status).toBe(200)
    const nonce = /nonce="([^"]+)"/.exec(alice.sent.at(-1)?.authorization ?? '')?.[1] ?? ''
    const handle = readNonceFields(nonce)?.handle ?? ''
    for (const token of [`${ADMIN_TOKEN}x`, ADMIN_TOKEN]) {
      await g(
        new Request(`${GATE}/.digest-gate/admin/contexts/${handle}/revoke`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        })
      )
    }
    expect((await alice.fetch('/private/2')).status).toBe(200)
    expect(authority.calls).toBe(2)
    expect(logged.join('\n')).toContain('revoke_context')
    expect(logged.join('\n')).not.toContain(ADMIN_TOKEN)
  })

  it('a token no Bearer header can carry is a configuration error, by name, never quoted', () => {
    for (const token of [
      `${ADMIN_TOKEN}\n`,
      ` ${ADMIN_TOKEN}`,
      `${ADMIN_TOKEN}!x`,
      'é'.repeat(32),
    ]) {
      let message = ''
      try {
        gate({ ADMIN_TOKEN: token })
      } catch (err) {
        message = String(err)
      }
      expect(message, JSON.stringify(token)).toMatch(/ADMIN_TOKEN/)
      expect(message).not.toContain(token.trim().slice(0, 16))
    }
    // A base64 or hex token, as `openssl rand` writes it, is one.
    expect(() => gate({ ADMIN_TOKEN: `${btoa(ADMIN_TOKEN)}==` })).not.toThrow()
  })

  it('GET, PUT and DELETE with the token change nothing', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      const res = await aliceSurvives((g) =>
        g(new Request(revokeAlice, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }))
      )
      expect(res.status, method).toBe(404)
    }
  })
})

describe('the key set', () => {
  /** A private JWK of `kind` with every private member any key type has, each a marked secret. */
  async function loadedJwk(kind: 'ES256' | 'EdDSA'): Promise<Record<string, unknown>> {
    const algorithm =
      kind === 'ES256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'Ed25519' }
    const pair = (await crypto.subtle.generateKey(algorithm, true, [
      'sign',
      'verify',
    ])) as CryptoKeyPair
    const jwk = (await crypto.subtle.exportKey('jwk', pair.privateKey)) as JsonWebKey
    const secret = (name: string) => `SECRET-${name}-${'A'.repeat(22)}`
    return {
      ...jwk,
      ...Object.fromEntries(['p', 'q', 'dp', 'dq', 'qi', 'k', 'priv'].map((m) => [m, secret(m)])),
      oth: [{ r: secret('r'), d: secret('othd'), t: secret('t') }],
      key_ops: ['sign'],
      ext: true,
    }
  }

  it.each(['ES256', 'EdDSA'] as const)(
    '%s with every private member a JWK may hold: only the public members are published',
    async (kind) => {
      const current = await loadedJwk(kind)
      const previous = await loadedJwk(kind === 'ES256' ? 'EdDSA' : 'ES256')
      const g = gate({
        ASSERTION_KEY: JSON.stringify(current),
        ASSERTION_KEY_PREVIOUS: JSON.stringify(previous),
      })
      const res = await g(new Request(GATE + JWKS_PATH))
      expect(res.status).toBe(200)
      const text = await res.text()
      expect(text).not.toContain('SECRET-')
      for (const jwk of [current, previous]) expect(text).not.toContain(String(jwk.d))
      const { keys } = JSON.parse(text) as { keys: Record<string, unknown>[] }
      expect(keys).toHaveLength(2)
      for (const key of keys) {
        const allowed = ['kty', 'crv', 'x', 'y', 'kid', 'alg', 'use']
        expect(Object.keys(key).filter((m) => !allowed.includes(m))).toEqual([])
      }
    }
  )
})
