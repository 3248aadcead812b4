/**
 * The gate end to end inside workerd: real Durable Objects, the in-test authority and origin. The
 * clock is the test's: Date is faked and the objects' timers are held, so lifetimes, idle timeouts,
 * revalidation and quiet spells are passed by hand, never slept through.
 */
import { evictDurableObject, listDurableObjectIds, runDurableObjectAlarm } from 'cloudflare:test'
import { env, exports } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { readNonceFields } from '../../src/digest/tokens.ts'
import {
  authorization,
  captureDecisions,
  challengeOf,
  client,
  type FakeAuthority,
  type FakeOrigin,
  GATE,
  gate,
  installPeers,
} from './fakes.ts'
import { type FakeClock, fakeClock, holdTimers, quietSpell } from './support/clock.ts'

let authority: FakeAuthority
let origin: FakeOrigin
let clock: FakeClock

beforeEach(() => {
  ;({ authority, origin } = installPeers())
  clock = fakeClock()
  holdTimers()
})
afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

/** The context object a Digest header's nonce names. */
function contextOf(authorization: string | null | undefined): DurableObjectStub {
  const nonce = /nonce="([^"]+)"/.exec(authorization ?? '')?.[1] ?? ''
  return env.CONTEXTS.getByName(readNonceFields(nonce)?.handle ?? '')
}

/**
 * Evict every running context object (storage kept), as a restart or an idle eviction would. The
 * nc flush timers are held: unless a test let a quiet spell pass, storage holds reservation marks.
 */
async function evictAllContexts(): Promise<void> {
  for (const id of await listDurableObjectIds(env.CONTEXTS)) {
    await evictDurableObject(env.CONTEXTS.get(id)).catch(() => {
      // not running: nothing to evict
    })
  }
}

const get = (path: string, headers: Record<string, string> = {}) =>
  exports.default.fetch(new Request(GATE + path, { headers }))

describe('challenge', () => {
  it('answers a request without credentials with 401 and one challenge per algorithm', async () => {
    const res = await get('/private/x')
    expect(res.status).toBe(401)
    const values = res.headers.get('www-authenticate') ?? ''
    expect(values).toMatch(/^Digest realm="digest-gate"/)
    const { nonce, opaque, all } = challengeOf(res)
    expect(all).toHaveLength(2)
    expect(all[0]).toContain('algorithm=SHA-256')
    expect(all[1]).toContain('algorithm=MD5')
    // One nonce and one opaque shared by all challenges; base64url, no padding.
    for (const c of all) {
      expect(c).toContain(`nonce="${nonce}"`)
      expect(c).toContain(`opaque="${opaque}"`)
      expect(c).toContain('qop="auth"')
    }
    expect(nonce).toMatch(/^[A-Za-z0-9_-]+$/)
    expect(opaque).toMatch(/^[A-Za-z0-9_-]+$/)
    expect(origin.requests).toHaveLength(0)
    expect(authority.calls).toBe(0)
  })

  it('lets public routes through without credentials, minus Authorization and identity headers', async () => {
    const res = await get('/public/page', {
      authorization: 'Basic YWxpY2U6d29uZGVybGFuZA==',
      'x-auth-user': 'mallory',
    })
    expect(res.status).toBe(200)
    const seen = origin.requests[0]?.headers ?? {}
    expect(seen.authorization).toBeUndefined()
    expect(seen['x-auth-user']).toBeUndefined()
  })
})

describe('sessions', () => {
  it('calls the authority exactly once for a session of 50 requests', async () => {
    const alice = client(gate(), 'alice', 'wonderland')
    for (let i = 0; i < 50; i++) {
      const res = await alice.fetch(`/private/item/${i}?q=${i}`)
      expect(res.status).toBe(200)
      expect(res.headers.get('authentication-info')).toMatch(/rspauth="[0-9a-f]{64}"/)
    }
    expect(authority.calls).toBe(1)
    expect(origin.requests).toHaveLength(50)
    // One 401 at the very start, none later: the client preempted with the cached challenge.
    expect(alice.sent.filter((s) => s.status === 401)).toHaveLength(1)
  })

  it('forwards the identity and a signed assertion, never Authorization or client-sent identity', async () => {
    const alice = client(gate(), 'alice', 'wonderland')
    const res = await alice.fetch('/private/me', {
      headers: {
        'x-auth-user': 'root',
        'X-Auth-Groups': 'admin,root',
        'x-auth-assertion': 'forged',
      },
    })
    expect(res.status).toBe(200)
    const seen = origin.requests.at(-1)?.headers ?? {}
    expect(seen.authorization).toBeUndefined()
    expect(seen['x-auth-user']).toBe('alice')
    expect(seen['x-auth-groups']).toBe('admin')
    const [, payload] = (seen['x-auth-assertion'] ?? '').split('.')
    const claims = JSON.parse(atob((payload ?? '').replace(/-/g, '+').replace(/_/g, '/')))
    expect(claims).toMatchObject({
      sub: 'alice',
      groups: ['admin'],
      iss: 'gate-test',
      realm: 'digest-gate',
    })
  })

  it('percent-encodes a non-ASCII user name in the identity header', async () => {
    const jason = client(gate(), 'Jäsøn Doe', 'Secret, or not?')
    expect((await jason.fetch('/private/doe.json')).status).toBe(200)
    expect(origin.requests.at(-1)?.headers['x-auth-user']).toBe('J%C3%A4s%C3%B8n Doe')
  })

  it('applies group rules: 403 for a user outside the group', async () => {
    const bob = client(gate(), 'bob', 'builder')
    expect((await bob.fetch('/admin/panel')).status).toBe(403)
    const alice = client(gate(), 'alice', 'wonderland')
    expect((await alice.fetch('/admin/panel')).status).toBe(200)
  })

  it('refuses a wrong password with a fresh (non-stale) challenge', async () => {
    const res = await client(gate(), 'alice', 'wrong').fetch('/private/x')
    expect(res.status).toBe(401)
    expect(challengeOf(res).stale).toBe(false)
    expect(origin.requests).toHaveLength(0)
  })

  it('verifies -sess algorithms with a new cnonce per request without asking the authority again', async () => {
    const g = gate({ ALGORITHMS: 'SHA-256-sess,MD5-sess' })
    const alice = client(g, 'alice', 'wonderland')
    const cnonces = new Set<string>()
    for (let i = 0; i < 10; i++) {
      expect((await alice.fetch(`/private/s${i}`)).status).toBe(200)
      const auth = alice.sent.at(-1)?.authorization ?? ''
      expect(auth).toMatch(/algorithm=SHA-256-sess/i)
      cnonces.add(/cnonce="([^"]+)"/.exec(auth)?.[1] ?? '')
    }
    expect(cnonces.size).toBe(10)
    expect(authority.calls).toBe(1)
  })

  it('accepts MD5 answers to the shared nonce (clients pair nonce and algorithm loosely)', async () => {
    const md5 = client(gate(), 'bob', 'builder', { algorithm: 'MD5' })
    expect((await md5.fetch('/private/m')).status).toBe(200)
  })
})

describe('replay mode off', () => {
  it('verifies warm sessions from the isolate cache with no Durable Object call', async () => {
    const decisions = captureDecisions()
    const alice = client(gate({ REPLAY_MODE: 'off', LOG_LEVEL: 'all' }), 'alice', 'wonderland')
    for (let i = 0; i < 10; i++) expect((await alice.fetch(`/private/off${i}`)).status).toBe(200)
    const ok = decisions.filter((d) => d.status === 200)
    expect(ok).toHaveLength(10)
    expect(ok.slice(2).every((d) => d.contextCalls === 0)).toBe(true)
    expect(authority.calls).toBe(1)
  })
})

describe('replay detection', () => {
  it('refuses a replayed (nonce, nc) with a stale challenge and does not forward it', async () => {
    const alice = client(gate(), 'alice', 'wonderland')
    expect((await alice.fetch('/private/a')).status).toBe(200)
    const captured = alice.sent.at(-1)?.authorization ?? ''
    const before = origin.requests.length
    const replay = await get('/private/a', { authorization: captured })
    expect(replay.status).toBe(401)
    expect(challengeOf(replay).stale).toBe(true)
    expect(origin.requests.length).toBe(before)
  })

  it('accepts 32 concurrent requests whose nc arrive shuffled inside the window', async () => {
    const challenge = challengeOf(await get('/private/w'))
    // Establish the context with nc=1.
    const first = await get('/private/w', {
      authorization: await authorization({
        user: 'bob',
        password: 'builder',
        ...challenge,
        uri: '/private/w',
      }),
    })
    expect(first.status).toBe(200)
    const ncs = Array.from({ length: 32 }, (_, i) => i + 2).sort(() => Math.random() - 0.5)
    const headers = await Promise.all(
      ncs.map((nc) =>
        authorization({ user: 'bob', password: 'builder', ...challenge, uri: '/private/w', nc })
      )
    )
    const results = await Promise.all(headers.map((h) => get('/private/w', { authorization: h })))
    expect(results.map((r) => r.status)).toEqual(Array(32).fill(200))
    expect(authority.calls).toBe(1)
  })

  it('accepts exactly one of 20 concurrent requests carrying the same nc', async () => {
    const challenge = challengeOf(await get('/private/r'))
    const established = await get('/private/r', {
      authorization: await authorization({
        user: 'bob',
        password: 'builder',
        ...challenge,
        uri: '/private/r',
      }),
    })
    expect(established.status).toBe(200)
    const h = await authorization({
      user: 'bob',
      password: 'builder',
      ...challenge,
      uri: '/private/r',
      nc: 7,
    })
    const results = await Promise.all(
      Array.from({ length: 20 }, () => get('/private/r', { authorization: h }))
    )
    const statuses = results.map((r) => r.status)
    expect(statuses.filter((s) => s === 200)).toHaveLength(1)
    expect(statuses.filter((s) => s === 401)).toHaveLength(19)
  })

  it('asks the authority once for 8 parallel first requests of one context (a page and its assets)', async () => {
    const challenge = challengeOf(await get('/private/p'))
    const headers = await Promise.all(
      [1, 2, 3, 4, 5, 6, 7, 8].map((nc) =>
        authorization({ user: 'bob', password: 'builder', ...challenge, uri: '/private/p', nc })
      )
    )
    const results = await Promise.all(headers.map((h) => get('/private/p', { authorization: h })))
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200))
    expect(authority.calls).toBe(1)
  })

  it('accepts exactly one of 20 concurrent initial authentications with the same nc', async () => {
    const challenge = challengeOf(await get('/private/i'))
    const h = await authorization({
      user: 'bob',
      password: 'builder',
      ...challenge,
      uri: '/private/i',
    })
    const results = await Promise.all(
      Array.from({ length: 20 }, () => get('/private/i', { authorization: h }))
    )
    expect(results.filter((r) => r.status === 200)).toHaveLength(1)
  })
})

describe('nonce lifetime', () => {
  it('answers an expired nonce with stale=true when the response is valid, plain 401 when not', async () => {
    const g = gate({ NONCE_LIFETIME: '1' })
    const challenge = challengeOf(await g(new Request(`${GATE}/private/e`)))
    clock.advance(2)
    const good = await g(
      new Request(`${GATE}/private/e`, {
        headers: {
          authorization: await authorization({
            user: 'alice',
            password: 'wonderland',
            ...challenge,
            uri: '/private/e',
          }),
        },
      })
    )
    expect(good.status).toBe(401)
    expect(challengeOf(good).stale).toBe(true)
    // The retry on the fresh nonce is verified at the edge: the stale answer cached the context.
    const fresh = challengeOf(good)
    expect(fresh.opaque).toBe(challenge.opaque)
    const retry = await g(
      new Request(`${GATE}/private/e`, {
        headers: {
          authorization: await authorization({
            user: 'alice',
            password: 'wonderland',
            ...fresh,
            uri: '/private/e',
          }),
        },
      })
    )
    expect(retry.status).toBe(200)
    expect(authority.calls).toBe(1)

    const bad = await g(
      new Request(`${GATE}/private/e`, {
        headers: {
          authorization: await authorization({
            user: 'alice',
            password: 'nope',
            ...challenge,
            uri: '/private/e',
          }),
        },
      })
    )
    expect(bad.status).toBe(401)
    expect(challengeOf(bad).stale).toBe(false)
  })

  it('sends nextnonce when the nonce nears its end', async () => {
    const g = gate({ NONCE_LIFETIME: '40', NEXTNONCE_LEAD: '39' })
    const challenge = challengeOf(await g(new Request(`${GATE}/private/n`)))
    const send = async (nc: number) =>
      g(
        new Request(`${GATE}/private/n`, {
          headers: {
            authorization: await authorization({
              user: 'bob',
              password: 'builder',
              ...challenge,
              uri: '/private/n',
              nc,
            }),
          },
        })
      )
    const nextnonceOf = (res: Response) =>
      /nextnonce="([^"]+)"/.exec(res.headers.get('authentication-info') ?? '')?.[1]
    // 40 s left: not yet inside the 39 s lead.
    const early = await send(1)
    expect(early.status).toBe(200)
    expect(nextnonceOf(early)).toBeUndefined()
    clock.advance(2)
    const res = await send(2)
    expect(res.status).toBe(200)
    const next = nextnonceOf(res)
    expect(next).toBeDefined()
    expect(next).not.toBe(challenge.nonce)
  })
})

describe('forged handles', () => {
  it('refuses tampered nonces and opaques with no Durable Object or authority call', async () => {
    const decisions = captureDecisions()
    const before = (await listDurableObjectIds(env.CONTEXTS)).length
    const challenge = challengeOf(await get('/private/f'))
    const flip = (s: string) =>
      s[5] === 'A' ? `${s.slice(0, 5)}B${s.slice(6)}` : `${s.slice(0, 5)}A${s.slice(6)}`
    const cases = [
      { nonce: flip(challenge.nonce), opaque: challenge.opaque },
      { nonce: challenge.nonce, opaque: flip(challenge.opaque) },
      {
        nonce: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        opaque: challenge.opaque,
      },
      { nonce: challenge.nonce, opaque: 'bm90LWEtcmVhbC1vcGFxdWU' },
    ]
    for (const c of cases) {
      const res = await get('/private/f', {
        authorization: await authorization({
          user: 'alice',
          password: 'wonderland',
          ...c,
          uri: '/private/f',
        }),
      })
      expect(res.status).toBe(401)
    }
    const refused = decisions.filter((d) => d.code === 'SEC_E_INVALID_HANDLE')
    expect(refused).toHaveLength(4)
    for (const d of refused) {
      expect(d.contextCalls).toBe(0)
      expect(d.authorityCalled).toBe(false)
    }
    expect(authority.calls).toBe(0)
    expect((await listDurableObjectIds(env.CONTEXTS)).length).toBe(before)
  })

  it('finds the context through the nonce when the client drops the opaque', async () => {
    const challenge = challengeOf(await get('/private/o'))
    const h = (nc: number) =>
      authorization({
        user: 'bob',
        password: 'builder',
        nonce: challenge.nonce,
        uri: '/private/o',
        nc,
      })
    expect((await get('/private/o', { authorization: await h(1) })).status).toBe(200)
    expect((await get('/private/o', { authorization: await h(2) })).status).toBe(200)
    expect(authority.calls).toBe(1)
  })
})

describe('authority faults', () => {
  for (const mode of ['down', 'slow', 'garbage', 'status500'] as const) {
    it(`authority ${mode}: new logins get 503 + Retry-After, established sessions keep working`, async () => {
      const g = gate({ AUTHORITY_TIMEOUT_MS: '300' })
      const alice = client(g, 'alice', 'wonderland')
      expect((await alice.fetch('/private/before')).status).toBe(200)
      authority.mode = mode
      const bob = await client(g, 'bob', 'builder').fetch('/private/new')
      expect(bob.status).toBe(503)
      expect(Number(bob.headers.get('retry-after'))).toBeGreaterThan(0)
      expect((await alice.fetch('/private/after')).status).toBe(200)
    })
  }
})

describe('context lifetime', () => {
  it('survives eviction of the context object with no authority call', async () => {
    const alice = client(gate(), 'alice', 'wonderland')
    expect((await alice.fetch('/private/1')).status).toBe(200)
    await evictAllContexts()
    expect((await alice.fetch('/private/2')).status).toBe(200)
    expect(authority.calls).toBe(1)
  })

  it('refuses after eviction a replay of a request answered before it (reserved nc marks)', async () => {
    const alice = client(gate(), 'alice', 'wonderland')
    expect((await alice.fetch('/private/r1')).status).toBe(200)
    expect((await alice.fetch('/private/r1')).status).toBe(200)
    const captured = alice.sent.at(-1)?.authorization ?? ''
    await evictAllContexts()
    // Replayed through another isolate, which has not seen the fresh nonce's handle verified: the
    // brakes admit it and the authority verifies it (the response is valid) before the object is
    // touched; then the object refuses its nc.
    const replay = await get('/private/r1', { authorization: captured })
    expect(replay.status).toBe(401)
    expect(challengeOf(replay).stale).toBe(true)
    expect(authority.calls).toBe(2)
    // The real client carries on through the stale challenge, without the authority.
    expect((await alice.fetch('/private/r2')).status).toBe(200)
    expect(authority.calls).toBe(2)
  })

  it('after a quiet spell and an eviction, the session carries on with no stale round trip', async () => {
    const alice = client(gate(), 'alice', 'wonderland')
    expect((await alice.fetch('/private/q1')).status).toBe(200)
    expect((await alice.fetch('/private/q2')).status).toBe(200)
    // Past the 2 s after which a quiet context writes its exact nc state.
    await quietSpell(clock, contextOf(alice.sent.at(-1)?.authorization), 3)
    await evictAllContexts()
    expect((await alice.fetch('/private/q3')).status).toBe(200)
    expect(alice.sent.filter((s) => s.status === 401)).toHaveLength(1)
    expect(authority.calls).toBe(1)
  })

  it('re-verifies with the authority after revalidateAfter: a disabled user loses access', async () => {
    const g = gate({ REVALIDATE_AFTER: '1' })
    const bob = client(g, 'bob', 'builder')
    expect((await bob.fetch('/private/1')).status).toBe(200)
    clock.advance(2)
    expect((await bob.fetch('/private/2')).status).toBe(200)
    expect(authority.calls).toBe(2)
    const user = authority.users.get('bob')
    if (user) user.disabled = true
    clock.advance(2)
    expect((await bob.fetch('/private/3')).status).toBe(401)
  })

  it('falls back to the authority, not to a password prompt, when a context has expired', async () => {
    const g = gate({ IDLE_TIMEOUT: '1' })
    const bob = client(g, 'bob', 'builder')
    expect((await bob.fetch('/private/1')).status).toBe(200)
    // The idle timeout passes as it would for real: a quiet spell, then the alarm that ends it.
    const context = () => contextOf(bob.sent.at(-1)?.authorization)
    await quietSpell(clock, context(), 2)
    // A fresh stub: the quiet object has released itself, which breaks the stubs it had.
    expect(await runDurableObjectAlarm(context())).toBe(true)
    const res = await bob.fetch('/private/2')
    expect(res.status).toBe(200)
    expect(authority.calls).toBe(2)
    expect(bob.sent.filter((s) => s.status === 401)).toHaveLength(1)
  })

  it('refuses a revoked context at once (admin endpoint), and all contexts of a user', async () => {
    const g = gate()
    const alice = client(g, 'alice', 'wonderland')
    expect((await alice.fetch('/private/1')).status).toBe(200)
    const auth = alice.sent.at(-1)?.authorization ?? ''
    const nonce = /nonce="([^"]+)"/.exec(auth)?.[1] ?? ''
    const unauth = await g(
      new Request(`${GATE}/.digest-gate/admin/users/digest-gate/alice/revoke`, { method: 'POST' })
    )
    expect(unauth.status).toBe(401)
    const revoked = await g(
      new Request(`${GATE}/.digest-gate/admin/users/digest-gate/alice/revoke`, {
        method: 'POST',
        headers: { authorization: 'Bearer test-admin-token-0123456789abcdef0123' },
      })
    )
    expect(((await revoked.json()) as { revoked: number }).revoked).toBeGreaterThanOrEqual(1)
    const after = await g(
      new Request(`${GATE}/private/2`, {
        headers: {
          authorization: await authorization({
            user: 'alice',
            password: 'wonderland',
            nonce,
            uri: '/private/2',
            nc: 9,
          }),
        },
      })
    )
    expect(after.status).toBe(401)
    expect(challengeOf(after).opaque).not.toBe('')
  })
})

describe('guessing against a cached key', () => {
  it('past one free mismatch, each guess from that client must be admitted by the brakes', async () => {
    const g = gate({ BRAKE_USER_FAILURES: '3', LOG_LEVEL: 'all' })
    const challenge = challengeOf(await g(new Request(`${GATE}/private/g`)))
    const as = (ip: string, h: string) =>
      g(new Request(`${GATE}/private/g`, { headers: { 'cf-connecting-ip': ip, authorization: h } }))
    const real = (nc: number) =>
      authorization({ user: 'alice', password: 'wonderland', ...challenge, uri: '/private/g', nc })
    expect((await as('198.51.100.1', await real(1))).status).toBe(200)
    const decisions = captureDecisions()
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) {
      const guess = await authorization({
        user: 'alice',
        password: `guess${i}`,
        ...challenge,
        uri: '/private/g',
        nc: 100 + i,
      })
      statuses.push((await as('198.51.100.66', guess)).status)
    }
    // One mismatch decided by the context alone, two admitted, then the brakes make it wait.
    expect(statuses).toEqual([401, 401, 401, 429, 429])
    expect(decisions.map((d) => d.reason)).toEqual([
      'response_mismatch',
      'response_mismatch',
      'response_mismatch',
      'user_failures',
      'user_failures',
    ])
    // Even the right answer from the guessing address waits its turn: never verified unadmitted.
    const braked = await as('198.51.100.66', await real(200))
    expect(braked.status).toBe(429)
    const wait = Number(braked.headers.get('retry-after'))
    expect(wait).toBeGreaterThan(0)
    // The real client elsewhere goes on with one context call and no brake call.
    decisions.length = 0
    expect((await as('198.51.100.1', await real(2))).status).toBe(200)
    expect(decisions.at(-1)?.contextCalls).toBe(1)
    // After the announced wait, the right answer from the guessing address gets in.
    clock.advance(wait)
    expect((await as('198.51.100.66', await real(201))).status).toBe(200)
    expect(authority.calls).toBe(1)
    expect(origin.requests.map((r) => r.headers['x-auth-user'])).toEqual([
      'alice',
      'alice',
      'alice',
    ])
  })
})

describe('origin faults', () => {
  it('answers 502 + Retry-After when the origin is unreachable', async () => {
    origin.down = true
    const res = await client(gate(), 'alice', 'wonderland').fetch('/private/x')
    expect(res.status).toBe(502)
    expect(res.headers.get('retry-after')).toBe('5')
  })
})

describe('bad input', () => {
  it('answers malformed Authorization with 400, not 5xx', async () => {
    for (const h of [
      'Digest',
      'Digest username=',
      'Digest username="a", realm="digest-gate"',
      'Digest a="b',
      'Digest ,,,=',
    ]) {
      const res = await get('/private/x', { authorization: h })
      expect(res.status).toBe(400)
      expect(await res.json()).toMatchObject({ error: 'invalid_request' })
    }
  })

  it('answers a uri that names another target with 400', async () => {
    const challenge = challengeOf(await get('/private/u'))
    const res = await get('/private/u', {
      authorization: await authorization({
        user: 'alice',
        password: 'wonderland',
        ...challenge,
        uri: '/private/other',
      }),
    })
    expect(res.status).toBe(400)
  })
})
