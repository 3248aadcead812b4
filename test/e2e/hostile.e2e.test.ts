/**
 * Hostile input against the real gate (the shared default gate under `wrangler dev`): more than
 * 10 000 generated Authorization headers (seeded, support/hostile-headers.ts), sent with bounded
 * concurrency over keep-alive connections, plus raw requests with bytes no HTTP library writes.
 *   - never a 5xx, never a 2xx: nothing forged reaches the origin;
 *   - nothing forged touches storage or the authority: every decision record says
 *     contextCalls 0 and authorityCalled false, and the authority records no verification;
 *   - genuine nonces with hostile values elsewhere may reach the authority, which denies them;
 *     anything the authority protocol cannot carry is refused by the gate (400), not a 503.
 * E2E_SEED=<n> varies the generated cases (default: fixed, so a failure reproduces).
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { LOCAL_SERVER_ID } from '../../scripts/stack/paths.ts'
import { verifyTotal } from './support/authority-metrics.ts'
import { e2e } from './support/context.ts'
import { tailDecisions, tailVerifications, workerLog } from './support/decisions.ts'
import { digestSession } from './support/digest-session.ts'
import { genuineChallenges, nonceForgeries } from './support/gate-tokens.ts'
import {
  byteCases,
  detailCases,
  forgedCases,
  type Genuine,
  hugeCases,
  rawRequests,
  soupCases,
  type Target,
  textCases,
} from './support/hostile-headers.ts'
import {
  type HeaderCase,
  histogram,
  type Outcome,
  sendHeaderCases,
  sendRawCases,
} from './support/hostile-send.ts'
import { ALICE } from './support/users.ts'

const SEED = Number(process.env.E2E_SEED ?? 7616)
/** One client address for the storm: the brakes of other suites' clients are not touched. */
const CLIENT_IP = '198.51.100.66'
const CONCURRENCY = 16

/** The shared default gate as wrangler.toml configures it. */
const TARGET: Target = {
  realm: 'digest-gate',
  path: '/private/hostile',
  offered: ['SHA-256', 'MD5'],
  notOffered: ['SHA-512-256', 'SHA-512-256-sess', 'SHA-256-sess', 'MD5-sess'],
}

/** Outcomes per category, e.g. { forged: { 400: 700, 401: 2800 } }. */
function byCategory(outcomes: Outcome[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {}
  for (const o of outcomes) {
    const counts = out[o.category] ?? {}
    counts[o.status] = (counts[o.status] ?? 0) + 1
    out[o.category] = counts
  }
  return out
}

describe('hostile Authorization headers against the default gate', () => {
  let gateUrl: string
  let genuine: Genuine[]

  beforeAll(async () => {
    gateUrl = e2e().gates.default
    genuine = await genuineChallenges(`${gateUrl}${TARGET.path}`, 24, CLIENT_IP)
  })

  it('10 000+ generated headers and raw requests: no 5xx, no 2xx, no storage or authority call', async () => {
    const forgeries = await nonceForgeries(e2e().secrets.gate, LOCAL_SERVER_ID)
    const generated = [
      ...textCases(SEED, 1500),
      ...soupCases(SEED + 1, 3500),
      ...hugeCases(SEED + 2, 300, TARGET),
      ...byteCases(SEED + 3, 1200, TARGET),
      ...forgedCases(SEED + 4, 3500, TARGET, genuine, { mintedElsewhere: forgeries }),
    ]
    const raw = rawRequests(SEED + 5, 300, {
      ...TARGET,
      host: new URL(gateUrl).host,
      clientIp: CLIENT_IP,
    })
    const cases: HeaderCase[] = generated.map((g) => ({ category: g.category, values: [g.value] }))
    // A few duplicate Authorization lines through node:http as well (they arrive joined by ", ").
    for (let i = 0; i + 1 < 200; i += 2) {
      cases.push({
        category: 'duplicate',
        values: [generated[i]?.value ?? '', generated[i + 1]?.value ?? ''],
      })
    }

    const decisions = tailDecisions(workerLog('gate'))
    const verifications = tailVerifications(workerLog('authority'))
    const metricsBefore = await verifyTotal(e2e().authorityUrl)
    const started = Date.now()
    const outcomes = await sendHeaderCases(`${gateUrl}${TARGET.path}`, cases, {
      clientIp: CLIENT_IP,
      concurrency: CONCURRENCY,
    })
    const rawOutcomes = await sendRawCases(gateUrl, raw, { concurrency: 8 })
    const seconds = (Date.now() - started) / 1000
    const records = await decisions.quiet()
    const metricsDelta = (await verifyTotal(e2e().authorityUrl)) - metricsBefore
    const all = [...outcomes, ...rawOutcomes]
    console.log(
      `[hostile] ${all.length} requests (${outcomes.length} headers, ${rawOutcomes.length} raw) in ` +
        `${seconds.toFixed(1)} s; statuses ${JSON.stringify(histogram(all))}; per category ` +
        `${JSON.stringify(byCategory(all))}; ${records.length} gate decisions; authority ` +
        `verifications ${verifications.read().length} (metrics delta ${metricsDelta})`
    )

    expect(all.length).toBeGreaterThanOrEqual(10_000)
    // Every request got an HTTP answer, and a refusal: 4xx only.
    const bad = all.filter((o) => o.status < 400 || o.status >= 500)
    expect(bad, JSON.stringify(histogram(bad))).toEqual([])
    // 431 (header too large) comes from workerd itself, for the largest headers only.
    for (const o of all) {
      if (o.category !== 'huge' && o.category !== 'raw') expect([400, 401]).toContain(o.status)
    }
    // Nothing forged got past the MAC checks to storage or to the authority.
    expect(records.length).toBeGreaterThan(outcomes.length * 0.95)
    expect(records.filter((r) => r.authorityCalled)).toEqual([])
    expect(records.filter((r) => r.contextCalls > 0)).toEqual([])
    expect(records.filter((r) => r.status >= 500)).toEqual([])
    expect(verifications.read()).toEqual([])
    // A live reload of the authority resets its counters: they may drop, never rise.
    expect(metricsDelta).toBeLessThanOrEqual(0)
  }, 240_000)

  it('genuine nonce and opaque with hostile values elsewhere: denied, never a 5xx or a 2xx', async () => {
    const cases: HeaderCase[] = detailCases(SEED + 6, 200, TARGET, genuine).map((g, i) => ({
      category: g.category,
      values: [g.value],
      // One client address each: these reach the authority, and must not trip the brakes.
      clientIp: `203.0.113.${1 + (i % 250)}`,
    }))
    const decisions = tailDecisions(workerLog('gate'))
    const verifications = tailVerifications(workerLog('authority'))
    const outcomes = await sendHeaderCases(`${gateUrl}${TARGET.path}`, cases, {
      clientIp: CLIENT_IP,
      concurrency: 8,
    })
    const records = await decisions.waitFor(cases.length)
    const verified = await verifications.quiet()
    const reasons: Record<string, number> = {}
    for (const r of records)
      reasons[r.reason ?? r.outcome] = (reasons[r.reason ?? r.outcome] ?? 0) + 1
    console.log(
      `[hostile] details: ${outcomes.length} requests, statuses ${JSON.stringify(histogram(outcomes))}, ` +
        `reasons ${JSON.stringify(reasons)}, authority verifications ${verified.length}`
    )
    for (const o of outcomes) expect([400, 401]).toContain(o.status)
    // What reached the authority was well-formed for it: denied, never `invalid` or a fault.
    expect(verified.length).toBe(records.filter((r) => r.authorityCalled).length)
    expect(verified.filter((v) => v.result !== 'logon_denied')).toEqual([])
    expect(records.filter((r) => r.reason?.startsWith('authority_') && r.status !== 401)).toEqual(
      []
    )
  }, 60_000)

  it('after the storm, a real login from another client works', async () => {
    const session = digestSession(gateUrl, ALICE.name, ALICE.password, {
      clientIp: '198.51.100.67',
    })
    expect((await session.get('/private/after-storm')).status).toBe(200)
    expect((await session.get('/private/after-storm/2')).status).toBe(200)
  })
})
