/**
 * Smaller holes, each closed and proven against the real Durable Objects and a recording origin:
 * handle takeover, revocation racing an establish, revalidation during an authority outage,
 * channel binding, auth-int body limits, configuration errors, and objects written by the first
 * release carrying on in place.
 */
import { createExecutionContext, listDurableObjectIds, runInDurableObject } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { baseHA1 } from '../../src/digest/algorithms.ts'
import { serializeNcState, usedUpTo } from '../../src/digest/nc-window.ts'
import { createTokenMinter, newContextHandle, readNonceFields } from '../../src/digest/tokens.ts'
import { ConfigError, readConfig } from '../../src/gate/config.ts'
import worker from '../../src/index.ts'
import {
  authorization,
  captureDecisions,
  challengeOf,
  client,
  type FakeAuthority,
  type FakeOrigin,
  GATE,
  type GateFetch,
  gate,
  installPeers,
} from './fakes.ts'
import { type FakeClock, fakeClock } from './support/clock.ts'
import { createFirstReleaseTables } from './support/first-release-schema.ts'

let authority: FakeAuthority
let origin: FakeOrigin
let clock: FakeClock

beforeEach(() => {
  ;({ authority, origin } = installPeers())
  clock = fakeClock()
})
afterEach(() => {
  vi.restoreAllMocks()
})

const ADMIN = { authorization: 'Bearer test-admin-token-0123456789abcdef0123' }

/** The gate as seen from one client address (and, optionally, with request.cf facts). */
function from(g: GateFetch, ip: string, cf?: Record<string, unknown>): GateFetch {
  return (req) => {
    const headers = new Headers(req.headers)
    headers.set('cf-connecting-ip', ip)
    return g(new Request(req, { headers, ...(cf ? { cf } : {}) }))
  }
}

const nonceOf = (h: string) => /nonce="([^"]+)"/.exec(h)?.[1] ?? ''

describe('a handle belongs to its first principal', () => {
  it('another user answering alice’s nonce gets a context of their own; alice’s is untouched', async () => {
    const g = gate()
    const alice = client(g, 'alice', 'wonderland')
    expect((await alice.fetch('/private/own/1')).status).toBe(200)
    const challenge = challengeOf(
      await g(new Request(`${GATE}/private/own/x`, { headers: { 'cf-connecting-ip': '1.2.3.4' } }))
    )
    const aliceHeader = alice.sent.at(-1)?.authorization ?? ''
    const takeover = await g(
      new Request(`${GATE}/private/own/bob`, {
        headers: {
          authorization: await authorization({
            user: 'bob',
            password: 'builder',
            nonce: nonceOf(aliceHeader),
            opaque: /opaque="([^"]+)"/.exec(aliceHeader)?.[1],
            uri: '/private/own/bob',
            nc: 50,
          }),
        },
      })
    )
    expect(takeover.status).toBe(401)
    expect(challengeOf(takeover).stale).toBe(false)
    expect(challengeOf(takeover).opaque).not.toBe(/opaque="([^"]+)"/.exec(aliceHeader)?.[1])
    expect(challenge.opaque).not.toBe('')
    // Revoking bob leaves alice's context alone, and alice goes on at the edge.
    await g(
      new Request(`${GATE}/.digest-gate/admin/users/digest-gate/bob/revoke`, {
        method: 'POST',
        headers: ADMIN,
      })
    )
    const calls = authority.calls
    expect((await alice.fetch('/private/own/2')).status).toBe(200)
    expect(authority.calls).toBe(calls)
    expect(origin.requests.map((r) => r.headers['x-auth-user'])).not.toContain('bob')
  })
})

describe('revocation racing an establish', () => {
  it('a user revoked while the authority verifies their login stays revoked', async () => {
    const g = gate()
    let release: () => void = () => {}
    authority.hold = new Promise<void>((r) => {
      release = r
    })
    const alice = client(g, 'alice', 'wonderland')
    const login = alice.fetch('/private/race/1')
    await vi.waitFor(() => expect(authority.calls).toBe(1))
    clock.advance(1)
    const revoked = await g(
      new Request(`${GATE}/.digest-gate/admin/users/digest-gate/alice/revoke`, {
        method: 'POST',
        headers: ADMIN,
      })
    )
    expect(revoked.status).toBe(200)
    release()
    const res = await login
    expect(res.status).toBe(401)
    expect(origin.requests).toHaveLength(0)
    // The handle it was made for stays refused.
    const header = alice.sent[0]?.authorization ?? ''
    const again = await g(
      new Request(`${GATE}/private/race/1`, {
        headers: {
          authorization: await authorization({
            user: 'alice',
            password: 'wonderland',
            nonce: nonceOf(header),
            uri: '/private/race/1',
            nc: 9,
          }),
        },
      })
    )
    expect(again.status).toBe(401)
    expect(origin.requests).toHaveLength(0)
  })

  it('a context revoked by handle before its establish lands stays revoked', async () => {
    const g = gate()
    let release: () => void = () => {}
    authority.hold = new Promise<void>((r) => {
      release = r
    })
    const challenge = challengeOf(await g(new Request(`${GATE}/private/race2`)))
    const handle = readNonceFields(challenge.nonce)?.handle ?? ''
    const header = await authorization({
      user: 'alice',
      password: 'wonderland',
      ...challenge,
      uri: '/private/race2',
    })
    const login = g(new Request(`${GATE}/private/race2`, { headers: { authorization: header } }))
    await vi.waitFor(() => expect(authority.calls).toBe(1))
    const revoked = await g(
      new Request(`${GATE}/.digest-gate/admin/contexts/${handle}/revoke`, {
        method: 'POST',
        headers: ADMIN,
      })
    )
    expect(revoked.status).toBe(200)
    release()
    expect((await login).status).toBe(401)
    expect(origin.requests).toHaveLength(0)
  })
})

describe('revalidation during an authority outage', () => {
  it('sessions keep working for REVALIDATE_GRACE past the due time, then 503; a denial ends them', async () => {
    const g = gate({ REVALIDATE_AFTER: '60', REVALIDATE_GRACE: '600' })
    const bob = client(g, 'bob', 'builder')
    expect((await bob.fetch('/private/out/1')).status).toBe(200)
    const decisions = captureDecisions()
    authority.mode = 'down'
    clock.advance(61)
    expect((await bob.fetch('/private/out/2')).status).toBe(200)
    expect(decisions.at(-1)?.reason).toBe('revalidation_deferred_authority_unreachable')
    clock.advance(550)
    expect((await bob.fetch('/private/out/3')).status).toBe(200)
    clock.advance(60)
    const late = await bob.fetch('/private/out/4')
    expect(late.status).toBe(503)
    expect(Number(late.headers.get('retry-after'))).toBeGreaterThan(0)
    // The authority is back: revalidated, and the session goes on at the edge.
    authority.mode = 'ok'
    expect((await bob.fetch('/private/out/5')).status).toBe(200)
    const calls = authority.calls
    expect((await bob.fetch('/private/out/6')).status).toBe(200)
    expect(authority.calls).toBe(calls)
    // A denial at the next revalidation ends the session at once.
    const user = authority.users.get('bob')
    if (user) user.disabled = true
    clock.advance(61)
    expect((await bob.fetch('/private/out/7')).status).toBe(401)
    expect(origin.requests.map((r) => r.path)).toEqual([
      '/private/out/1',
      '/private/out/2',
      '/private/out/3',
      '/private/out/5',
      '/private/out/6',
    ])
  })
})

describe('channel binding', () => {
  it('BINDING=address: a context is verified only from the bucket it was established from', async () => {
    const g = gate({ BINDING: 'address' })
    const home = client(from(g, '198.51.100.20'), 'alice', 'wonderland')
    expect((await home.fetch('/private/bind/1')).status).toBe(200)
    const next = (await home.raw.authorizationFor('GET', `${GATE}/private/bind/2`)) ?? ''
    const decisions = captureDecisions()
    const elsewhere = await from(
      g,
      '203.0.113.20'
    )(new Request(`${GATE}/private/bind/2`, { headers: { authorization: next } }))
    expect(elsewhere.status).toBe(401)
    expect(challengeOf(elsewhere).stale).toBe(false)
    expect(decisions.at(-1)).toMatchObject({ reason: 'bad_bindings', code: 'SEC_E_BAD_BINDINGS' })
    expect((await home.fetch('/private/bind/3')).status).toBe(200)
    expect(origin.requests.map((r) => r.path)).toEqual(['/private/bind/1', '/private/bind/3'])
  })

  it('BINDING=client-cert: bound to the certificate; none presented, no login at all', async () => {
    const g = gate({ BINDING: 'client-cert' })
    const cert = (fingerprint: string) => ({
      tlsClientAuth: {
        certPresented: '1',
        certVerified: 'SUCCESS',
        certFingerprintSHA256: fingerprint,
      },
    })
    const withCert = client(from(g, '198.51.100.21', cert('aa'.repeat(32))), 'bob', 'builder')
    expect((await withCert.fetch('/private/cert/1')).status).toBe(200)
    const next = (await withCert.raw.authorizationFor('GET', `${GATE}/private/cert/2`)) ?? ''
    const other = await from(
      g,
      '198.51.100.21',
      cert('bb'.repeat(32))
    )(new Request(`${GATE}/private/cert/2`, { headers: { authorization: next } }))
    expect(other.status).toBe(401)
    const calls = authority.calls
    const none = client(from(g, '198.51.100.22'), 'bob', 'builder')
    expect((await none.fetch('/private/cert/3')).status).toBe(401)
    expect(authority.calls).toBe(calls)
    expect(origin.requests.map((r) => r.path)).toEqual(['/private/cert/1'])
  })
})

describe('auth-int bodies', () => {
  it('are verified up to AUTH_INT_MAX_BODY; beyond it 413, before the authority is asked', async () => {
    const g = gate({ QOP: 'auth,auth-int', AUTH_INT_MAX_BODY: '1024' })
    const alice = client(g, 'alice', 'wonderland', { preferAuthInt: true, verifyRspauth: false })
    const small = await alice.fetch('/private/int/1', { method: 'POST', body: 'x'.repeat(1000) })
    expect(small.status).toBe(200)
    const calls = authority.calls
    const big = await alice.fetch('/private/int/2', { method: 'POST', body: 'x'.repeat(5000) })
    expect(big.status).toBe(413)
    // A stranger's big body with a fresh nonce: refused at the limit, the authority not asked.
    const stranger = client(g, 'mallory', 'x', { preferAuthInt: true, verifyRspauth: false })
    const junk = await stranger.fetch('/private/int/3', { method: 'POST', body: 'y'.repeat(5000) })
    expect(junk.status).toBe(413)
    expect(authority.calls).toBe(calls)
    expect(origin.requests.map((r) => r.body.length)).toEqual([1000])
  })
})

describe('configuration errors', () => {
  it('are found when the configuration is read, by name', () => {
    const base = { ...env, AUTHORITY_URL: 'https://authority.test/v1/verify' }
    expect(() => readConfig({ ...base, REPLAY_WINDOW: '100' }, false)).toThrow(ConfigError)
    expect(() => readConfig({ ...base, ADMIN_TOKEN: 'short' }, false)).toThrow(/ADMIN_TOKEN/)
    expect(() => readConfig({ ...base, BINDING: 'ip' }, false)).toThrow(/BINDING/)
  })

  it('answer clients without the configured values, and log them', async () => {
    const logged: string[] = []
    vi.spyOn(console, 'error').mockImplementation((line: unknown) => {
      logged.push(String(line))
    })
    const res = await worker.fetch(
      new Request(`${GATE}/private/x`),
      { ...env, REPLAY_WINDOW: 'secret-looking-value' } as never,
      createExecutionContext()
    )
    expect(res.status).toBe(500)
    const body = await res.text()
    expect(body).not.toContain('secret-looking-value')
    expect(body).not.toContain('REPLAY_WINDOW')
    expect(logged.join('\n')).toContain('secret-looking-value')
  })

  it('what digestAuth refuses when built is a configuration error too: 503 on healthz, 500 elsewhere', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {})
    for (const vars of [{ REPLAY_WINDOW: '131072' }, { REALM: 'line\r\nbreak' }]) {
      const e = { ...env, ...vars } as never
      const health = await worker.fetch(
        new Request(`${GATE}/.digest-gate/healthz`),
        e,
        createExecutionContext()
      )
      expect(health.status, JSON.stringify(vars)).toBe(503)
      expect(await health.json()).toEqual({ status: 'misconfigured' })
      const res = await worker.fetch(new Request(`${GATE}/private/x`), e, createExecutionContext())
      expect(res.status).toBe(500)
      expect(await res.json()).toMatchObject({ error: 'misconfigured' })
    }
  })
})

describe('decision log', () => {
  it('names a user only once verified: a password typed as the name never reaches the log', async () => {
    const decisions = captureDecisions()
    const g = gate()
    const typo = client(g, 'wonderland', 'alice')
    expect((await typo.fetch('/private/log/1')).status).toBe(401)
    const alice = client(g, 'alice', 'wonderland')
    expect((await alice.fetch('/private/log/2')).status).toBe(200)
    expect(JSON.stringify(decisions.slice(0, 2))).not.toContain('wonderland')
    expect(decisions.at(-1)?.user).toBe('alice')
  })
})

describe('objects written by the first release', () => {
  it('carry on their session in place: no stale round trip, no authority call', async () => {
    const handle = newContextHandle()
    const now = clock.now()
    const config = readConfig({ ...env, AUTHORITY_URL: 'https://authority.test/v1/verify' }, false)
    const minter = await createTokenMinter(config.auth.nonceKeys)
    const nonce = await minter.mintNonce({ serverId: 'gate-test', handle, now: now - 10 })
    const opaque = await minter.mintOpaque(handle)
    const key = baseHA1('SHA-256', 'alice', 'digest-gate', 'wonderland')
    await runInDurableObject(env.CONTEXTS.getByName(handle), (_instance, state) => {
      const sql = state.storage.sql
      // The schema and rows exactly as the first release wrote them.
      createFirstReleaseTables(sql)
      sql.exec(
        `INSERT INTO context VALUES (1, 'alice', 0, 'digest-gate', ?, 'SHA-256', ?, ?, ?, ?, ?, 1800, 0)`,
        JSON.stringify({ name: 'alice', groups: ['admin'] }),
        key,
        now - 100,
        now - 10,
        now - 100,
        now - 100 + 43_200
      )
      sql.exec('INSERT INTO failures VALUES (?, 1, ?)', '198.51.100.9', now - 5)
      // nc 1..3 used; the exact state written after a quiet spell (mark = highest).
      sql.exec(
        'INSERT INTO nonces VALUES (?, ?, 3, ?)',
        nonce,
        serializeNcState(usedUpTo(3, 128)),
        now - 10 + 300 + 120
      )
    })
    const g = gate()
    const send = (nc: number) =>
      authorization({
        user: 'alice',
        password: 'wonderland',
        nonce,
        opaque,
        uri: '/private/v1',
        nc,
      }).then((h) => g(new Request(`${GATE}/private/v1`, { headers: { authorization: h } })))
    expect((await send(4)).status).toBe(200)
    expect((await send(5)).status).toBe(200)
    const replay = await send(2)
    expect(replay.status).toBe(401)
    expect(authority.calls).toBe(0)
    expect(origin.requests).toHaveLength(2)
    expect((await listDurableObjectIds(env.CONTEXTS)).length).toBeGreaterThan(0)
  })
})
