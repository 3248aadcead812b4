/**
 * No path spelling gets past the route rules: nothing a lenient origin reads as outside /public/
 * reaches it anonymously, and nothing it reads as /admin/* reaches it for a user outside group
 * admin. Proved over canonicalisation and matching alone, then against the real gate in workerd,
 * on what the origin receives.
 */
import { exports } from 'cloudflare:workers'
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { canonicalizePath } from '../../src/gate/request-path.ts'
import { matchRoute } from '../../src/gate/routes.ts'
import {
  captureDecisions,
  client,
  type FakeOrigin,
  GATE,
  type GateFetch,
  gate,
  installPeers,
} from './fakes.ts'
import {
  DEMO_RULES,
  hostilePath,
  inside,
  lenientRead,
  REPORTED,
  strictRead,
  whatwgPath,
} from './path-spellings.ts'

const [PUBLIC_RULE, ADMIN_RULE] = DEMO_RULES

describe('canonicalisation and matching (pure)', () => {
  it('lets no spelling reach a lenient or strict origin outside what its rule grants', () => {
    let accepted = 0
    let readAsAdmin = 0
    fc.assert(
      fc.property(hostilePath, fc.boolean(), (raw, allowParameters) => {
        // The raw request target, and what a WHATWG URL parser made of it first.
        for (const input of [raw, whatwgPath(raw)]) {
          const c = canonicalizePath(input, { allowParameters })
          if (c.kind === 'refused') continue
          accepted++
          const rule = matchRoute(DEMO_RULES, c.matchPath)
          const lenient = lenientRead(c.path)
          if (rule === PUBLIC_RULE) {
            expect(inside(lenient, '/public')).toBe(true)
            expect(inside(strictRead(c.path, allowParameters), '/public')).toBe(true)
          }
          if (inside(lenient, '/admin')) {
            readAsAdmin++
            expect(rule).toBe(ADMIN_RULE)
          }
        }
      }),
      { numRuns: 20_000 }
    )
    // The grammar must reach both sides of the property, or it proves nothing.
    expect(accepted).toBeGreaterThan(2000)
    expect(readAsAdmin).toBeGreaterThan(200)
  })

  it.each(REPORTED.bob)('refuses or protects %s', (raw) => {
    const c = canonicalizePath(raw)
    if (c.kind === 'canonical') expect(matchRoute(DEMO_RULES, c.matchPath)).toBe(ADMIN_RULE)
    const p = canonicalizePath(raw, { allowParameters: true })
    if (p.kind === 'canonical') expect(matchRoute(DEMO_RULES, p.matchPath)).toBe(ADMIN_RULE)
  })

  it.each(REPORTED.anonymous)('refuses %s', (raw) => {
    expect(canonicalizePath(raw).kind).toBe('refused')
    expect(canonicalizePath(raw, { allowParameters: true }).kind).toBe('refused')
  })
})

describe('the real gate (workerd), on what the origin receives', () => {
  let origin: FakeOrigin
  beforeEach(() => {
    ;({ origin } = installPeers())
    captureDecisions()
  })
  afterEach(() => {
    vi.restoreAllMocks()
  })

  const worker: GateFetch = (req) => exports.default.fetch(req)
  const anonymous = (path: string) => worker(new Request(GATE + path))
  /** Half of the runs on spellings the gate accepts: those are the ones that reach the origin. */
  const accepted = (a: fc.Arbitrary<string>) =>
    fc.oneof(
      a,
      a.filter((p) => canonicalizePath(whatwgPath(p)).kind === 'canonical')
    )
  const spelling = accepted(hostilePath)
  /** Spellings that start inside /public/ and try to climb out of it. */
  const fromPublic = accepted(
    fc.oneof(
      hostilePath,
      hostilePath.map((p) => `/public${p}`)
    )
  )
  const received = () => origin.requests.map((r) => r.path.replace(/\?.*$/, ''))

  it('answers the reported spellings 400 or 403, and the origin receives none of them', async () => {
    const lines: string[] = []
    // Refusals are logged as denials (console.warn), the rest on console.log.
    for (const level of ['log', 'warn'] as const) {
      vi.spyOn(console, level).mockImplementation((line: unknown) => {
        lines.push(String(line))
      })
    }
    for (const path of REPORTED.anonymous) {
      const res = await anonymous(path)
      expect(res.status, path).toBe(400)
      expect(res.headers.get('cache-control')).toBe('no-store')
      expect(await res.json()).toMatchObject({ error: 'invalid_request' })
    }
    const bob = client(worker, 'bob', 'builder')
    const statuses = []
    for (const path of REPORTED.bob) statuses.push((await bob.fetch(path)).status)
    expect(statuses).toEqual([403, 403, 403, 400, 400])
    expect(origin.requests).toEqual([])
    // Each refusal is logged with its reason.
    const refusals = lines
      .map((line) => JSON.parse(line))
      .filter((entry) => entry.event === 'digest-gate.path_refused')
    expect(refusals.map((entry) => entry.reason)).toEqual([
      'parameters',
      'encoded_slash',
      'encoded_backslash',
      'parameters',
      'encoded_slash',
    ])
  })

  it('with path parameters allowed, protects /admin;x=1/panel and forwards the parameter', async () => {
    const withParameters = gate({ ALLOW_PATH_PARAMETERS: 'true' })
    const bob = client(withParameters, 'bob', 'builder')
    expect((await bob.fetch('/admin;x=1/panel')).status).toBe(403)
    const alice = client(withParameters, 'alice', 'wonderland')
    expect((await alice.fetch('/admin;x=1/panel')).status).toBe(200)
    expect((await withParameters(new Request(`${GATE}/public/..;/private/secret`))).status).toBe(
      400
    )
    expect(received()).toEqual(['/admin;x=1/panel'])
  })

  it('forwards the canonical path, which an admin does receive (the check can fail)', async () => {
    const alice = client(worker, 'alice', 'wonderland')
    for (const path of REPORTED.bob.slice(0, 3)) expect((await alice.fetch(path)).status).toBe(200)
    expect(received()).toEqual(['/admin/panel', '/admin/panel', '/Admin/panel'])
  })

  it('lets no hostile spelling reach the origin anonymously outside /public/', async () => {
    await fc.assert(
      fc.asyncProperty(fromPublic, async (path) => {
        origin.requests.length = 0
        const res = await anonymous(path)
        expect(res.status).toBeLessThan(500)
        for (const seen of received()) {
          expect(inside(lenientRead(seen), '/public')).toBe(true)
          expect(inside(strictRead(seen), '/public')).toBe(true)
        }
      }),
      { numRuns: 1000 }
    )
  })

  it('lets no hostile spelling reach the origin as /admin/* for bob, while alice gets there', async () => {
    const bob = client(worker, 'bob', 'builder')
    const alice = client(worker, 'alice', 'wonderland')
    let aliceReachedAdmin = 0
    await fc.assert(
      fc.asyncProperty(spelling, async (path) => {
        origin.requests.length = 0
        const res = await bob.fetch(path)
        expect(res.status).toBeLessThan(500)
        for (const r of origin.requests) {
          // Public paths are forwarded without identity; all others as bob.
          expect([undefined, 'bob']).toContain(r.headers['x-auth-user'])
          expect(inside(lenientRead(r.path.replace(/\?.*$/, '')), '/admin')).toBe(false)
        }
        // The same spelling from an admin: what bob was denied does reach the origin.
        if (res.status === 403) {
          origin.requests.length = 0
          expect((await alice.fetch(path)).status).toBe(200)
          expect(inside(lenientRead(received()[0] ?? ''), '/admin')).toBe(true)
          aliceReachedAdmin++
        }
      }),
      { numRuns: 400 }
    )
    expect(aliceReachedAdmin).toBeGreaterThan(0)
  })
})
