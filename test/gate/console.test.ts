/**
 * The operator's console inside workerd: the page and its API behind the gate's own Digest login
 * for members of CONSOLE_GROUP (this project's env sets it to `admin`: alice is in, bob is not),
 * the index kept by reports from the real Durable Objects (sent in their background, hence the
 * waits), revocation through it, the refusal ring, and hostile input. The clock is the test's.
 */
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { baseHA1 } from '../../src/digest/algorithms.ts'
import { readNonceFields } from '../../src/digest/tokens.ts'
import type { ListedSession } from '../../src/gate/console/index-object.ts'
import { MAX_REFUSALS } from '../../src/gate/console/index-object.ts'
import type { RefusalReport } from '../../src/gate/console/reports.ts'
import {
  authorization,
  captureDecisions,
  challengeOf,
  client,
  type FakeAuthority,
  GATE,
  installPeers,
  REALM,
} from './fakes.ts'
import { type FakeClock, fakeClock } from './support/clock.ts'
import { consoleGate, handleOf, indexObject } from './support/console-gate.ts'

let authority: FakeAuthority
let clock: FakeClock

beforeEach(() => {
  ;({ authority } = installPeers())
  clock = fakeClock()
})
afterEach(() => {
  vi.restoreAllMocks()
})

const CONSOLE = '/.digest-gate/console'
const API = '/.digest-gate/api'
const CSRF = { 'X-Digest-Gate-Console': '1' }
const HOSTILE = '<img src=x onerror=alert(1)>'

type Listed = ListedSession

async function sessions(admin: ReturnType<typeof client>): Promise<Listed[]> {
  const res = await admin.fetch(`${API}/sessions`)
  expect(res.status).toBe(200)
  return ((await res.json()) as { sessions: Listed[] }).sessions
}

/** Reports arrive in the objects' background: poll until the expectation holds. */
const eventually = (check: () => Promise<void>) =>
  vi.waitFor(check, { timeout: 3000, interval: 20 })

describe('who may use the console', () => {
  it('alice (group admin) gets the page and the API, bob 403, no credentials 401', async () => {
    const g = consoleGate()
    const alice = client(g, 'alice', 'wonderland')
    const bob = client(g, 'bob', 'builder')
    for (const path of [CONSOLE, `${CONSOLE}/console.js`, `${API}/sessions`, `${API}/brakes`]) {
      const anonymous = await g(new Request(GATE + path))
      expect(anonymous.status, path).toBe(401)
      expect(anonymous.headers.get('www-authenticate')).toMatch(/^Digest realm="digest-gate"/)
      expect((await alice.fetch(path)).status, path).toBe(200)
      expect((await bob.fetch(path)).status, path).toBe(403)
    }
    expect((await alice.fetch(`${API}/refusals`)).status).toBe(200)
    const page = await alice.fetch(CONSOLE)
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
    // The console's own paths only: an unknown one under the API is still no gate endpoint.
    expect((await alice.fetch(`${API}/nothing`)).status).toBe(404)
  })

  it('is off when CONSOLE_GROUP is unset: every console path is 404, never the origin', async () => {
    const g = consoleGate({ CONSOLE_GROUP: '' })
    const alice = client(g, 'alice', 'wonderland')
    expect((await alice.fetch('/private/warm-up')).status).toBe(200)
    for (const path of [CONSOLE, `${CONSOLE}/console.js`, `${API}/sessions`, `${API}/refusals`]) {
      expect((await g(new Request(GATE + path))).status, path).toBe(404)
      expect((await alice.fetch(path)).status, path).toBe(404)
    }
    const post = await g(
      new Request(`${GATE}${API}/users/bob/revoke`, { method: 'POST', headers: CSRF })
    )
    expect(post.status).toBe(404)
  })

  it('a group change reaches the console with the user’s revalidation', async () => {
    authority.users.set('carol', { password: 'c4r0l', groups: [] })
    const g = consoleGate({ REVALIDATE_AFTER: '60' })
    const carol = client(g, 'carol', 'c4r0l')
    expect((await carol.fetch(`${API}/sessions`)).status).toBe(403)
    authority.users.set('carol', { password: 'c4r0l', groups: ['admin'] })
    clock.advance(61)
    expect((await carol.fetch(`${API}/sessions`)).status).toBe(200)
  })
})

describe('faults', () => {
  it('answers 503 + Retry-After when the index cannot be reached, and logs it', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {})
    const overloaded = () => Promise.reject(new Error('Durable Object is overloaded'))
    const g = consoleGate({
      CONSOLE_INDEX: {
        getByName: () => ({
          sessions: overloaded,
          brakes: overloaded,
          refusals: overloaded,
          refused: overloaded,
        }),
      },
    })
    const alice = client(g, 'alice', 'wonderland')
    for (const path of ['/sessions', '/brakes', '/refusals']) {
      const res = await alice.fetch(API + path)
      expect(res.status, path).toBe(503)
      expect(res.headers.get('retry-after')).toBe('5')
      expect(res.headers.get('cache-control')).toBe('no-store')
      expect(await res.json()).toMatchObject({ error: 'unavailable' })
    }
    expect(errors).toHaveBeenCalledWith(expect.stringContaining('overloaded'))
  })
})

describe('the page', () => {
  it('is hardened: no-store, a CSP without inline script, no framing, no sniffing', async () => {
    const g = consoleGate()
    const alice = client(g, 'alice', 'wonderland')
    const bob = client(g, 'bob', 'builder')
    const page = await alice.fetch(CONSOLE)
    const csp = page.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'none'")
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toContain('unsafe-inline')
    expect(csp).not.toContain('unsafe-eval')
    const html = await page.text()
    // Scripts only from the console's own path, none inline; no inline handlers or styles.
    expect(html.match(/<script\b[^>]*>/g)).toEqual([
      '<script src="/.digest-gate/console/console.js" defer>',
    ])
    expect(html).not.toMatch(/\son[a-z]+=|<style|style=/i)
    const answers = [
      page,
      await alice.fetch(`${CONSOLE}/console.js`),
      await alice.fetch(`${CONSOLE}/console.css`),
      await alice.fetch(`${API}/sessions`),
      await bob.fetch(`${API}/sessions`),
      await g(new Request(`${GATE}${CONSOLE}`)),
    ]
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 403, 401])
    for (const res of answers) {
      expect(res.headers.get('cache-control')).toBe('no-store')
      expect(res.headers.get('x-frame-options')).toBe('DENY')
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'")
    }
  })

  it('renders with textContent only: the script has no innerHTML, no eval, no document.write', async () => {
    const alice = client(consoleGate(), 'alice', 'wonderland')
    const script = await (await alice.fetch(`${CONSOLE}/console.js`)).text()
    expect(script).toContain('textContent')
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/)
    expect(script).not.toMatch(/new Function/)
  })
})

describe('active sessions', () => {
  it('lists a session with what its first request showed, and never a key, nonce or header', async () => {
    const g = consoleGate()
    const alice = client(g, 'alice', 'wonderland')
    const bob = client(g, 'bob', 'builder', {})
    const first = await bob.fetch('/private/b1', {
      headers: { 'cf-connecting-ip': '203.0.113.9', 'user-agent': 'curl/8.1.2' },
    })
    expect(first.status).toBe(200)
    // Later requests from elsewhere change nothing of what was first seen.
    await bob.fetch('/private/b2', {
      headers: { 'cf-connecting-ip': '198.51.100.1', 'user-agent': 'other' },
    })
    const handle = handleOf(bob)
    let listed: Listed | undefined
    await eventually(async () => {
      listed = (await sessions(alice)).find((s) => s.handle === handle)
      expect(listed).toBeDefined()
    })
    expect(listed).toEqual({
      handle,
      user: 'bob',
      groups: [],
      algorithm: 'SHA-256',
      created: clock.now(),
      lastUsed: clock.now(),
      expires: clock.now() + 43_200,
      idleTimeout: 1800,
      requests: 1,
      address: '203.0.113.9',
      userAgent: 'curl/8.1.2',
    })
    const raw = await (await alice.fetch(`${API}/sessions`)).text()
    const key = await baseHA1('SHA-256', 'bob', REALM, 'builder')
    const nonce = /nonce="([^"]+)"/.exec(bob.sent.at(-1)?.authorization ?? '')?.[1] ?? ''
    expect(raw).not.toContain(key)
    expect(raw).not.toContain(nonce)
    expect(raw).not.toMatch(/Digest |response|cnonce|sessionKey|session_key/i)
    const body = JSON.parse(raw) as { viewer: string; realm: string; total: number }
    expect(body).toMatchObject({ viewer: 'alice', realm: REALM })
  })

  it('costs no call per verified request: one context call each, use reported with last_used', async () => {
    const decisions = captureDecisions()
    const g = consoleGate({ LOG_LEVEL: 'all' })
    const bob = client(g, 'bob', 'builder')
    for (let i = 0; i < 10; i++) expect((await bob.fetch(`/private/c${i}`)).status).toBe(200)
    const verified = decisions.filter((d) => d.outcome === 'verified_at_edge')
    expect(verified).toHaveLength(9)
    expect(verified.every((d) => d.contextCalls === 1)).toBe(true)
    const handle = handleOf(bob)
    const row = async () => {
      const listed = await runInDurableObject(indexObject(), (index) => index.sessions(clock.now()))
      return listed.sessions.find((s) => s.handle === handle)
    }
    // Within the minute nothing but the establish was reported: the count waits for last_used.
    await eventually(async () => expect((await row())?.requests).toBe(1))
    clock.advance(61)
    expect((await bob.fetch('/private/c10')).status).toBe(200)
    await eventually(async () => {
      expect(await row()).toMatchObject({ requests: 11, lastUsed: clock.now() })
    })
  })
})

describe('revocation', () => {
  it('refuses without the console header (403) and revokes nothing', async () => {
    const g = consoleGate()
    const alice = client(g, 'alice', 'wonderland')
    const bob = client(g, 'bob', 'builder')
    expect((await bob.fetch('/private/x1')).status).toBe(200)
    const handle = handleOf(bob)
    const attempts = [
      alice.fetch(`${API}/sessions/${handle}/revoke`, { method: 'POST' }),
      alice.fetch(`${API}/users/bob/revoke`, { method: 'POST' }),
      alice.fetch(`${API}/users/bob/revoke`, {
        method: 'POST',
        headers: { ...CSRF, 'X-Digest-Gate-Console': '0' },
      }),
      // A browser says where a request came from: the header alone does not do cross-site.
      alice.fetch(`${API}/sessions/${handle}/revoke`, {
        method: 'POST',
        headers: { ...CSRF, 'sec-fetch-site': 'cross-site' },
      }),
    ]
    for (const res of await Promise.all(attempts)) {
      expect(res.status).toBe(403)
      expect(await res.json()).toMatchObject({ error: 'forbidden' })
    }
    // A cross-site script setting the header needs a preflight: challenged, never permitted.
    const preflight = await g(
      new Request(`${GATE}${API}/users/bob/revoke`, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://evil.example',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'x-digest-gate-console',
        },
      })
    )
    expect(preflight.status).toBe(401)
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull()
    const before = bob.sent.length
    expect((await bob.fetch('/private/x2')).status).toBe(200)
    // Verified from the cached key: no new challenge, the session lives.
    expect(bob.sent.slice(before).map((s) => s.status)).toEqual([200])
    await eventually(async () => {
      expect((await sessions(alice)).some((s) => s.handle === handle)).toBe(true)
    })
  })

  it('revokes one session: its next request gets a fresh 401 challenge, and it leaves the list', async () => {
    const g = consoleGate()
    const alice = client(g, 'alice', 'wonderland')
    const bob = client(g, 'bob', 'builder')
    const bob2 = client(g, 'bob', 'builder')
    expect((await bob.fetch('/private/r1')).status).toBe(200)
    expect((await bob2.fetch('/private/r1')).status).toBe(200)
    const handle = handleOf(bob)
    await eventually(async () => {
      expect((await sessions(alice)).some((s) => s.handle === handle)).toBe(true)
    })
    const res = await alice.fetch(`${API}/sessions/${handle}/revoke`, {
      method: 'POST',
      headers: CSRF,
    })
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ revoked: 1 })
    // The revoked session's next request, as the client sends it: refused with a fresh challenge.
    const next = await g(
      new Request(`${GATE}/private/r2`, {
        headers: {
          authorization: await authorization({
            user: 'bob',
            password: 'builder',
            nonce: /nonce="([^"]+)"/.exec(bob.sent.at(-1)?.authorization ?? '')?.[1] ?? '',
            uri: '/private/r2',
            nc: 5,
          }),
        },
      })
    )
    expect(next.status).toBe(401)
    const challenge = challengeOf(next)
    expect(challenge.stale).toBe(false)
    expect(readNonceFields(challenge.nonce)?.handle).not.toBe(handle)
    // Listed no more, at once; bob's other session is untouched.
    const listed = (await sessions(alice)).map((s) => s.handle)
    expect(listed).not.toContain(handle)
    expect(listed).toContain(handleOf(bob2))
    expect((await bob2.fetch('/private/r3')).status).toBe(200)
    // Revoking it again finds nothing live; a malformed handle is a 400.
    const again = await alice.fetch(`${API}/sessions/${handle}/revoke`, {
      method: 'POST',
      headers: CSRF,
    })
    expect(await again.json()).toEqual({ revoked: 0 })
    const bad = await alice.fetch(`${API}/sessions/not-a-handle/revoke`, {
      method: 'POST',
      headers: CSRF,
    })
    expect(bad.status).toBe(400)
  })

  it('revokes every session of a user (name percent-encoded): each one’s next request is refused', async () => {
    const g = consoleGate()
    const alice = client(g, 'alice', 'wonderland')
    const jason = [1, 2, 3].map(() => client(g, 'Jäsøn Doe', 'Secret, or not?'))
    for (const j of jason) expect((await j.fetch('/private/j1')).status).toBe(200)
    const handles = jason.map(handleOf)
    await eventually(async () => {
      const listed = (await sessions(alice)).filter((s) => s.user === 'Jäsøn Doe')
      expect(listed.map((s) => s.handle).sort()).toEqual([...handles].sort())
    })
    const res = await alice.fetch(`${API}/users/${encodeURIComponent('Jäsøn Doe')}/revoke`, {
      method: 'POST',
      headers: CSRF,
    })
    expect(await res.json()).toEqual({ revoked: 3 })
    expect((await sessions(alice)).filter((s) => s.user === 'Jäsøn Doe')).toEqual([])
    const calls = authority.calls
    for (const j of jason) {
      const before = j.sent.length
      // The client gets a fresh challenge and logs in again: a new session, with the authority.
      expect((await j.fetch('/private/j2')).status).toBe(200)
      expect(j.sent.slice(before).map((s) => s.status)).toEqual([401, 200])
      expect(handleOf(j)).not.toBe(handles[jason.indexOf(j)])
    }
    expect(authority.calls - calls).toBe(3)
  })
})

describe('the index through expiry and revocation', () => {
  it('drops a session when its context ends (idle timeout, the context’s alarm)', async () => {
    const g = consoleGate({ IDLE_TIMEOUT: '120' })
    const bob = client(g, 'bob', 'builder')
    expect((await bob.fetch('/private/e1')).status).toBe(200)
    const handle = handleOf(bob)
    const stored = () =>
      runInDurableObject(
        indexObject(),
        (_index, state) =>
          state.storage.sql
            .exec<{ n: number }>('SELECT COUNT(*) AS n FROM sessions WHERE handle = ?', handle)
            .one().n
      )
    await eventually(async () => expect(await stored()).toBe(1))
    clock.advance(121)
    // Listed no more once run out by the clock, even before the context says so …
    const listed = await runInDurableObject(indexObject(), (index) => index.sessions(clock.now()))
    expect(listed.sessions.map((s) => s.handle)).not.toContain(handle)
    // … and deleted when the context's alarm ends the session.
    expect(await runDurableObjectAlarm(env.CONTEXTS.getByName(handle))).toBe(true)
    await eventually(async () => expect(await stored()).toBe(0))
  })

  it('lists a session again when its handle is established anew after it ran out', async () => {
    const g = consoleGate({ IDLE_TIMEOUT: '120' })
    const bob = client(g, 'bob', 'builder')
    expect((await bob.fetch('/private/n1')).status).toBe(200)
    const handle = handleOf(bob)
    const createdFirst = clock.now()
    clock.advance(121)
    // The context ends on this request and the authority establishes it again on the same handle.
    expect((await bob.fetch('/private/n2')).status).toBe(200)
    expect(handleOf(bob)).toBe(handle)
    await eventually(async () => {
      const listed = await runInDurableObject(indexObject(), (index) => index.sessions(clock.now()))
      const row = listed.sessions.find((s) => s.handle === handle)
      expect(row?.created).toBe(clock.now())
      expect(row?.created).not.toBe(createdFirst)
    })
  })

  it('drops a session revoked elsewhere (the ADMIN_TOKEN endpoint)', async () => {
    const g = consoleGate()
    const bob = client(g, 'bob', 'builder')
    expect((await bob.fetch('/private/a1')).status).toBe(200)
    const handle = handleOf(bob)
    const alice = client(g, 'alice', 'wonderland')
    await eventually(async () => {
      expect((await sessions(alice)).some((s) => s.handle === handle)).toBe(true)
    })
    const res = await g(
      new Request(`${GATE}/.digest-gate/admin/contexts/${handle}/revoke`, {
        method: 'POST',
        headers: { authorization: 'Bearer test-admin-token-0123456789abcdef0123' },
      })
    )
    expect(await res.json()).toEqual({ revoked: 1 })
    await eventually(async () => {
      expect((await sessions(alice)).some((s) => s.handle === handle)).toBe(false)
    })
  })
})

describe('brakes', () => {
  it('lists an address and user being throttled, why and until when, until it is over', async () => {
    const g = consoleGate({ BRAKE_USER_FAILURES: '3' })
    const alice = client(g, 'alice', 'wonderland')
    const from = { 'cf-connecting-ip': '198.51.100.77' }
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) {
      const guess = client(g, 'bob', `guess-${i}`)
      statuses.push((await guess.fetch('/private/g', { headers: from })).status)
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429])
    type Brake = { address?: string; user?: string; reason: string; until: number; since: number }
    let brake: Brake | undefined
    await eventually(async () => {
      const res = await alice.fetch(`${API}/brakes`)
      const { brakes } = (await res.json()) as { brakes: Brake[] }
      brake = brakes.find((b) => b.address === '198.51.100.77' && b.user === 'bob')
      expect(brake).toBeDefined()
    })
    expect(brake?.reason).toBe('user_failures')
    expect(brake?.since).toBe(clock.now())
    expect(brake?.until).toBeGreaterThan(clock.now())
    clock.advance((brake?.until ?? 0) - clock.now())
    const res = await alice.fetch(`${API}/brakes`)
    const { brakes } = (await res.json()) as { brakes: Brake[] }
    expect(brakes.find((b) => b.address === '198.51.100.77')).toBeUndefined()
  })
})

describe('the latest refusals', () => {
  it('records refusals with the user as sent, not challenges or stale nonces', async () => {
    const g = consoleGate()
    const alice = client(g, 'alice', 'wonderland')
    const marker = `who-${clock.now()}`
    expect(
      (
        await client(g, marker, 'nope').fetch('/private/who', {
          headers: { 'cf-connecting-ip': '192.0.2.44' },
        })
      ).status
    ).toBe(401)
    expect((await client(g, 'bob', 'builder').fetch('/admin/x')).status).toBe(403)
    await g.settled()
    const res = await alice.fetch(`${API}/refusals`)
    const { refusals } = (await res.json()) as {
      refusals: { user: string; address: string; status: number; reason: string; path: string }[]
    }
    const mine = refusals.find((r) => r.user === marker)
    expect(mine).toMatchObject({
      address: '192.0.2.44',
      status: 401,
      reason: 'authority_logon_denied',
      path: '/private/who',
    })
    expect(refusals.find((r) => r.user === 'bob')).toMatchObject({
      status: 403,
      reason: 'not_authorized',
    })
    // The first 401 of every login (no credentials) is no refusal of anyone.
    expect(refusals.some((r) => r.reason === 'no_credentials')).toBe(false)
  })

  it(`keeps the latest ${MAX_REFUSALS}, newest first, from a few writes`, async () => {
    // Every write of the ring, counted on its way to the index object.
    let writes = 0
    const counted = {
      getByName(name: string) {
        const stub = env.CONSOLE_INDEX.getByName(name)
        return {
          refused: (rows: RefusalReport[], now: number) => {
            writes++
            return stub.refused(rows, now)
          },
          sessions: (now: number) => stub.sessions(now),
          brakes: (now: number) => stub.brakes(now),
          refusals: () => stub.refusals(),
          forget: (handle: string, now: number) => stub.forget(handle, now),
          forgetUser: (user: string, now: number) => stub.forgetUser(user, now),
        }
      },
    }
    // Brakes off: one address guessing this much would rightly be made to wait (429) instead.
    const g = consoleGate({ BRAKES: 'false', CONSOLE_INDEX: counted })
    const alice = client(g, 'alice', 'wonderland')
    const challenge = challengeOf(await g(new Request(`${GATE}/private/ring`)))
    for (let i = 0; i < MAX_REFUSALS + 50; i++) {
      const res = await g(
        new Request(`${GATE}/private/ring`, {
          headers: {
            authorization: await authorization({
              user: `ring-${i}`,
              password: 'x',
              ...challenge,
              uri: '/private/ring',
              nc: i + 1,
            }),
          },
        })
      )
      expect(res.status).toBe(401)
    }
    await g.settled()
    const res = await alice.fetch(`${API}/refusals`)
    const { refusals } = (await res.json()) as { refusals: { user: string }[] }
    expect(refusals).toHaveLength(MAX_REFUSALS)
    expect(refusals[0]?.user).toBe(`ring-${MAX_REFUSALS + 49}`)
    expect(refusals.at(-1)?.user).toBe('ring-50')
    const stored = await runInDurableObject(
      indexObject(),
      (_index, state) =>
        state.storage.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM refusals').one().n
    )
    expect(stored).toBe(MAX_REFUSALS)
    // 250 refusals in about a second: the first written at once, the rest in one or two writes.
    expect(writes).toBeGreaterThanOrEqual(2)
    expect(writes).toBeLessThanOrEqual(4)
  })
})

describe('hostile input', () => {
  it('a user name of markup appears only JSON-escaped in the API, nowhere in the page', async () => {
    const g = consoleGate()
    const alice = client(g, 'alice', 'wonderland')
    const long = `${HOSTILE}${'x'.repeat(200)}`
    // (A control character in a name is refused by the parser before anything is recorded.)
    for (const user of [HOSTILE, long, 'bidi\u202egnp.exe']) {
      const res = await client(g, user, 'whatever').fetch('/private/h', {
        headers: { 'user-agent': HOSTILE },
      })
      expect(res.status).toBe(401)
    }
    await g.settled()
    const raw = await (await alice.fetch(`${API}/refusals`)).text()
    expect(raw).not.toContain('<img')
    expect(raw).toContain('\\u003cimg src=x onerror=alert(1)\\u003e')
    const users = (JSON.parse(raw) as { refusals: { user: string }[] }).refusals.map((r) => r.user)
    expect(users).toContain(HOSTILE)
    // Clipped to 64 characters; controls and bidi overrides made visible.
    expect(users).toContain(Array.from(long).slice(0, 64).join(''))
    expect(users).toContain('bidi\ufffdgnp.exe')
    for (const path of [CONSOLE, `${CONSOLE}/console.js`, `${CONSOLE}/console.css`]) {
      const text = await (await alice.fetch(path)).text()
      expect(text, path).not.toContain('<img')
      expect(text, path).not.toContain('onerror')
    }
  })

  it('a hostile user agent at login is listed JSON-escaped and clipped', async () => {
    authority.users.set(HOSTILE, { password: 'pw', groups: [HOSTILE] })
    const g = consoleGate()
    const alice = client(g, 'alice', 'wonderland')
    const mallory = client(g, HOSTILE, 'pw')
    const agent = `${HOSTILE}${'y'.repeat(400)}`
    expect((await mallory.fetch('/private/m', { headers: { 'user-agent': agent } })).status).toBe(
      200
    )
    const handle = handleOf(mallory)
    await eventually(async () => {
      const raw = await (await alice.fetch(`${API}/sessions`)).text()
      expect(raw).not.toContain('<img')
      const listed = (JSON.parse(raw) as { sessions: Listed[] }).sessions.find(
        (s) => s.handle === handle
      )
      expect(listed).toMatchObject({ user: HOSTILE, groups: [HOSTILE] })
      expect(listed?.userAgent).toBe(agent.slice(0, 256))
    })
  })
})
