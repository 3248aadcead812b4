/**
 * The operator's console attacked: state changes by any other method or from any other site,
 * handles and user names in odd spellings, client addresses of markup, floods of refusals and
 * brakes against the index, and the headers of every answer the console gives. Each test asserts
 * on what the index holds, whether a session lives on, or what the answer carries.
 */
import { listDurableObjectIds, runInDurableObject } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { MAX_REFUSALS } from '../../src/gate/console/index-object.ts'
import type { RefusalReport } from '../../src/gate/console/reports.ts'
import { captureDecisions, client, installPeers, REALM } from './fakes.ts'
import { fakeClock } from './support/clock.ts'
import { type ConsoleGate, consoleGate, handleOf, indexObject } from './support/console-gate.ts'

beforeEach(() => {
  installPeers()
  fakeClock()
  captureDecisions()
})
afterEach(() => {
  vi.restoreAllMocks()
})

const API = '/.digest-gate/api'
const CSRF = { 'X-Digest-Gate-Console': '1' }
const MARKUP = '<svg onload=alert(1)>'

/** bob logs in; after `attack`, his session must still be verified at the edge (not revoked). */
async function bobSurvives(
  g: ConsoleGate,
  attack: (handle: string) => Promise<void>
): Promise<void> {
  const bob = client(g, 'bob', 'builder')
  expect((await bob.fetch('/private/before')).status).toBe(200)
  await attack(handleOf(bob))
  const before = bob.sent.length
  expect((await bob.fetch('/private/after')).status).toBe(200)
  expect(bob.sent.slice(before).map((s) => s.status)).toEqual([200])
}

/** The hardening every console answer carries, whatever its status. */
function expectHardened(res: Response, what: string): void {
  expect(res.headers.get('cache-control'), what).toBe('no-store')
  expect(res.headers.get('x-frame-options'), what).toBe('DENY')
  expect(res.headers.get('x-content-type-options'), what).toBe('nosniff')
  expect(res.headers.get('content-security-policy'), what).toContain("frame-ancestors 'none'")
  expect(res.headers.get('access-control-allow-origin'), what).toBeNull()
}

describe('state changes other than a same-origin POST with the header', () => {
  it('other methods, other sites, simple forms: nothing revoked, every answer hardened', async () => {
    const g = consoleGate()
    const alice = client(g, 'alice', 'wonderland')
    await bobSurvives(g, async (handle) => {
      const paths = [`${API}/sessions/${handle}/revoke`, `${API}/users/bob/revoke`]
      const attempts: [string, () => Promise<Response>, number[]][] = []
      for (const path of paths) {
        for (const method of ['GET', 'HEAD', 'PUT', 'DELETE', 'PATCH']) {
          // With the header: no route does anything but POST (404), without it 403.
          attempts.push([
            `${method} ${path}`,
            () => alice.fetch(path, { method, headers: CSRF }),
            [404],
          ])
          if (method !== 'GET' && method !== 'HEAD') {
            attempts.push([`${method} ${path} bare`, () => alice.fetch(path, { method }), [403]])
          }
        }
        for (const site of ['same-site', 'cross-site', 'none']) {
          const headers = { ...CSRF, 'sec-fetch-site': site }
          attempts.push([
            `${site} ${path}`,
            () => alice.fetch(path, { method: 'POST', headers }),
            [403],
          ])
        }
        // What a cross-site <form enctype="text/plain"> or a no-cors fetch can send.
        const form = {
          method: 'POST',
          headers: { 'content-type': 'text/plain', origin: 'https://evil.example' },
          body: '{"X-Digest-Gate-Console":"1"}',
        }
        attempts.push([`form ${path}`, () => alice.fetch(path, form), [403]])
        const urlencoded = {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'X-Digest-Gate-Console=1',
        }
        attempts.push([`urlencoded ${path}`, () => alice.fetch(path, urlencoded), [403]])
        const overridden = {
          method: 'GET',
          headers: { ...CSRF, 'x-http-method-override': 'POST' },
        }
        attempts.push([
          `override ${path}`,
          () => alice.fetch(`${path}?_method=POST`, overridden),
          [404],
        ])
      }
      // One after another: in parallel, each would start a login of its own (429 past a few).
      for (const [what, send, statuses] of attempts) {
        const res = await send()
        expect(statuses, what).toContain(res.status)
        expectHardened(res, what)
      }
    })
  })
})

describe('handles and user names in odd spellings', () => {
  it('a handle that is none: 400 or 404, no context object reached or created', async () => {
    const g = consoleGate()
    const alice = client(g, 'alice', 'wonderland')
    expect((await alice.fetch(`${API}/sessions`)).status).toBe(200)
    await bobSurvives(g, async (handle) => {
      const objects = (await listDurableObjectIds(env.CONTEXTS)).length
      const odd = [
        `${handle.slice(0, 21)}%2F`,
        `${handle}%00`,
        `${handle.slice(0, 20)}..`,
        '..%2F..%2Fadmin',
        '%2e%2e',
        `${handle}x`,
        handle.slice(1),
        `${handle.slice(0, 21)}%20`,
        `${handle.slice(0, 21)}=`,
        encodeURIComponent(`${handle.slice(0, 21)}\u0430`),
      ]
      for (const h of odd) {
        const res = await alice.fetch(`${API}/sessions/${h}/revoke`, {
          method: 'POST',
          headers: CSRF,
        })
        expect([400, 404], h).toContain(res.status)
        expectHardened(res, h)
      }
      expect((await listDurableObjectIds(env.CONTEXTS)).length).toBe(objects)
    })
  })

  it('a user name spelled otherwise revokes nobody; the realm is the gate’s own', async () => {
    const g = consoleGate()
    const alice = client(g, 'alice', 'wonderland')
    await bobSurvives(g, async () => {
      const names = [
        'Bob',
        'BOB',
        'bob%20',
        '%20bob',
        'bob%00',
        'b%C3%B6b',
        'bob%2F',
        '%2Fbob',
        `${REALM}%2Fbob`,
        'bob%252F',
        'bo%ZZb',
        '%E2%80%AEbob',
        encodeURIComponent(JSON.stringify([REALM, 'bob'])),
      ]
      for (const name of names) {
        const res = await alice.fetch(`${API}/users/${name}/revoke`, {
          method: 'POST',
          headers: CSRF,
        })
        // A segment the gate's paths refuse (outer spaces) is a 400 before any lookup.
        expect([200, 400], name).toContain(res.status)
        if (res.status === 200) expect(await res.json(), name).toEqual({ revoked: 0 })
        expectHardened(res, name)
      }
      const long = await alice.fetch(`${API}/users/${'b'.repeat(257)}/revoke`, {
        method: 'POST',
        headers: CSRF,
      })
      expect(long.status).toBe(400)
      expectHardened(long, 'long')
    })
  })
})

describe('client addresses of markup', () => {
  it.each(['cf-connecting-ip', 'x-real-ip'])(
    '%s: listed JSON-escaped and clipped, in sessions and refusals',
    async (header) => {
      const g = consoleGate()
      const alice = client(g, 'alice', 'wonderland')
      const address = `${MARKUP}${'9'.repeat(100)}`
      const from = { [header]: address }
      const bob = client(g, 'bob', 'builder')
      expect((await bob.fetch('/private/a', { headers: from })).status).toBe(200)
      const handle = handleOf(bob)
      expect(
        (await client(g, 'bob', 'wrong').fetch(`/private/${MARKUP}`, { headers: from })).status
      ).toBe(401)
      await g.settled()
      await vi.waitFor(
        async () => {
          const raw = await (await alice.fetch(`${API}/sessions`)).text()
          expect(raw).not.toContain('<')
          const { sessions } = JSON.parse(raw) as {
            sessions: { handle: string; address: string }[]
          }
          expect(sessions.find((s) => s.handle === handle)?.address).toBe(address.slice(0, 64))
        },
        { timeout: 3000, interval: 20 }
      )
      const raw = await (await alice.fetch(`${API}/refusals`)).text()
      expect(raw).not.toContain('<')
      const { refusals } = JSON.parse(raw) as { refusals: RefusalReport[] }
      const mine = refusals.find((r) => r.address === address.slice(0, 64))
      expect(mine?.user).toBe('bob')
      // The URL parser already percent-encoded the path's markup.
      expect(mine?.path).toBe('/private/%3Csvg%20onload=alert(1)%3E')
    }
  )
})

describe('floods against the index', () => {
  it('refusals by the thousand stay a ring, and the sessions stay listed', async () => {
    const g = consoleGate()
    const alice = client(g, 'alice', 'wonderland')
    const bob = client(g, 'bob', 'builder')
    expect((await bob.fetch('/private/x')).status).toBe(200)
    const handle = handleOf(bob)
    const now = Math.floor(Date.now() / 1000)
    const row = (i: number): RefusalReport => ({
      at: Date.now(),
      user: `flood-${i}-${'u'.repeat(500)}`,
      address: `${'a'.repeat(500)}${i}`,
      method: 'X'.repeat(100),
      path: `/${'p'.repeat(5000)}`,
      reason: 'r'.repeat(500),
      status: 401,
    })
    for (let batch = 0; batch < 5; batch++) {
      await indexObject().refused(
        Array.from({ length: 1000 }, (_, i) => row(batch * 1000 + i)),
        now
      )
    }
    const stored = await runInDurableObject(indexObject(), (_index, state) =>
      state.storage.sql
        .exec<{ n: number; longest: number }>(
          `SELECT COUNT(*) AS n, MAX(LENGTH(user) + LENGTH(address) + LENGTH(method) +
             LENGTH(path) + LENGTH(reason)) AS longest FROM refusals`
        )
        .one()
    )
    expect(stored.n).toBe(MAX_REFUSALS)
    expect(stored.longest).toBeLessThanOrEqual(64 + 64 + 16 + 256 + 64)
    await vi.waitFor(
      async () => {
        const res = await alice.fetch(`${API}/sessions`)
        const { sessions } = (await res.json()) as { sessions: { handle: string }[] }
        expect(sessions.map((s) => s.handle)).toContain(handle)
      },
      { timeout: 3000, interval: 20 }
    )
  })

  it('brakes from thousands of addresses stay bounded, the longest kept', async () => {
    const now = Math.floor(Date.now() / 1000)
    const index = indexObject()
    await index.throttled(
      { user: 'alice', reason: 'user_global_failures', until: now + 3600, nextAttempt: now + 60 },
      now
    )
    // In the object, one report after another: the RPCs would only make this slower.
    await runInDurableObject(index, (instance) => {
      for (let i = 0; i < 1500; i++) {
        instance.throttled(
          {
            address: `203.0.113.${i % 256}/${i}`,
            user: 'alice',
            reason: 'user_failures',
            until: now + 60,
            nextAttempt: now + 1,
          },
          now
        )
      }
    })
    const brakes = await index.brakes(now)
    expect(brakes.length).toBeLessThanOrEqual(1000)
    expect(brakes[0]).toMatchObject({ user: 'alice', reason: 'user_global_failures' })
  })
})
