/**
 * npm Digest clients. digest-fetch (3.1.1) computes the algorithm set in its options whatever the
 * challenge says (so each gate configuration is tried with its own algorithm), keeps one nc
 * counter per client and never resets it. urllib (4.9.1) knows MD5 only, sends no `algorithm`,
 * and counts nc in one process-wide counter.
 */
import DigestClient from 'digest-fetch'
import { request } from 'urllib'
import { describe, expect, it } from 'vitest'
import { type ClientAdapter, describeClientSuite } from './support/client-suite.ts'
import { e2e } from './support/context.ts'
import { expectForwardedAs, parseEcho, sha256Hex } from './support/echo.ts'
import { record } from './support/record.ts'
import { startRecorder } from './support/recorder.ts'
import { ALICE } from './support/users.ts'
import type { GateVariant } from './support/variants.ts'
import { packageVersion } from './support/versions.ts'

/** The algorithm digest-fetch is configured with for each gate configuration. */
const DIGEST_FETCH_ALGORITHM: Record<GateVariant, string> = {
  default: 'MD5',
  'MD5,SHA-256': 'MD5',
  'SHA-256': 'SHA-256',
  MD5: 'MD5',
  'SHA-256-sess': 'SHA-256-sess',
  'MD5-sess': 'MD5-sess',
  'SHA-512-256': 'SHA-512-256',
  userhash: 'MD5',
}

const digestFetch: ClientAdapter = {
  id: 'digest-fetch',
  version: () => `digest-fetch ${packageVersion('digest-fetch')}`,
  async get(url, credentials, variant) {
    const response = credentials
      ? await new DigestClient(credentials.user, credentials.password, {
          algorithm: DIGEST_FETCH_ALGORITHM[variant],
        }).fetch(url)
      : await fetch(url)
    return { status: response.status, body: await response.text() }
  },
}

const urllib: ClientAdapter = {
  id: 'urllib',
  version: () => `urllib ${packageVersion('urllib')}`,
  async get(url, credentials) {
    const response = await request(url, {
      dataType: 'text',
      timeout: 20_000,
      ...(credentials ? { digestAuth: `${credentials.user}:${credentials.password}` } : {}),
    })
    return { status: response.status, body: String(response.data) }
  },
}

describeClientSuite(
  digestFetch,
  {
    default: true,
    'MD5,SHA-256': true,
    'SHA-256': true,
    MD5: true,
    'SHA-256-sess': true,
    'MD5-sess': true,
    'SHA-512-256': true,
    userhash: true,
  },
  { algorithm: DIGEST_FETCH_ALGORITHM, userhash: false }
)

describeClientSuite(
  urllib,
  {
    default: true,
    'MD5,SHA-256': true,
    'SHA-256': 'urllib computes MD5 only',
    MD5: true,
    'SHA-256-sess': 'urllib computes MD5 only',
    'MD5-sess': 'urllib has no -sess',
    'SHA-512-256': 'urllib computes MD5 only',
    userhash: true,
  },
  { algorithm: { default: '', 'MD5,SHA-256': '', MD5: '', userhash: '' }, userhash: false }
)

describe('digest-fetch: one client, several requests', () => {
  it('keeps counting nc on one challenge; every request 200', async () => {
    const recorder = await startRecorder(e2e().gates.default)
    try {
      const client = new DigestClient(ALICE.name, ALICE.password, { algorithm: 'MD5' })
      const statuses: number[] = []
      for (let i = 1; i <= 4; i++) {
        const response = await client.fetch(`${recorder.url}/private/item-${i}`)
        expectForwardedAs(parseEcho(await response.text()), ALICE.name)
        statuses.push(response.status)
      }
      expect(statuses).toEqual([200, 200, 200, 200])
      // The first request is challenged; the client answers the others preemptively.
      expect(recorder.exchanges.filter((e) => e.status === 401)).toHaveLength(1)
      const ncs = recorder.exchanges
        .filter((e) => e.digest)
        .map((e) => Number.parseInt(e.digest?.nc ?? '', 16))
      expect(ncs).toEqual([...ncs].sort((a, b) => a - b))
      expect(new Set(ncs).size).toBe(ncs.length)
      record({
        kind: 'check',
        client: 'digest-fetch',
        check: 'one client, 4 requests: 1 challenge, nc increasing',
        ok: true,
      })
    } finally {
      await recorder.close()
    }
  })

  it('POST with a body', async () => {
    const client = new DigestClient(ALICE.name, ALICE.password, { algorithm: 'SHA-256' })
    const body = JSON.stringify({ from: 'digest-fetch', values: [1, 2, 3] })
    const response = await client.fetch(`${e2e().gates['SHA-256']}/private/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    })
    expect(response.status).toBe(200)
    const echo = parseEcho(await response.text())
    expectForwardedAs(echo, ALICE.name)
    expect(echo.method).toBe('POST')
    expect(echo.bodySha256).toBe(sha256Hex(body))
    record({ kind: 'check', client: 'digest-fetch', check: 'POST with a body', ok: true })
  })
})

describe('urllib: requests with a body', () => {
  it('POST with a body', async () => {
    const body = JSON.stringify({ from: 'urllib', values: [4, 5, 6] })
    const response = await request(`${e2e().gates.default}/private/upload`, {
      method: 'POST',
      content: body,
      headers: { 'content-type': 'application/json' },
      dataType: 'text',
      digestAuth: `${ALICE.name}:${ALICE.password}`,
    })
    expect(response.status).toBe(200)
    const echo = parseEcho(String(response.data))
    expectForwardedAs(echo, ALICE.name)
    expect(echo.method).toBe('POST')
    expect(echo.bodySha256).toBe(sha256Hex(body))
    record({ kind: 'check', client: 'urllib', check: 'POST with a body', ok: true })
  })
})
