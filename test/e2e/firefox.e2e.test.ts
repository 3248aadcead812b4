/**
 * Debian's Firefox ESR, headless, driven over WebDriver BiDi by puppeteer-core (no browser
 * download). Of a folded challenge line it answers the strongest algorithm it knows, wherever it
 * stands: MD5, SHA-256 and their -sess forms, not SHA-512-256, no userhash. Firefox calls home at
 * start-up: non-local connections are refused (MOZ_DISABLE_NONLOCAL_CONNECTIONS) and it runs on a
 * fresh profile in the run directory. One browser for the file; each login in a context of its own
 * (its own credentials cache).
 */
import { join } from 'node:path'
import puppeteer, { type Browser } from 'puppeteer-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ClientAdapter, describeClientSuite } from './support/client-suite.ts'
import { e2e } from './support/context.ts'
import { expectForwardedAs, parseEcho } from './support/echo.ts'
import { record } from './support/record.ts'
import { startRecorder } from './support/recorder.ts'
import { ALICE } from './support/users.ts'

const FIREFOX = '/usr/bin/firefox-esr'

let browser: Browser

beforeAll(async () => {
  browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    userDataDir: join(e2e().runDir, 'firefox-profile'),
    env: { ...process.env, MOZ_DISABLE_NONLOCAL_CONNECTIONS: '1' },
  })
})
afterAll(async () => {
  await browser?.close()
})

const adapter: ClientAdapter = {
  id: 'firefox',
  version: async () => `Firefox ESR ${(await browser.version()).replace(/^firefox\//i, '')}`,
  async get(url, credentials) {
    const context = await browser.createBrowserContext()
    try {
      const page = await context.newPage()
      if (credentials) {
        await page.authenticate({ username: credentials.user, password: credentials.password })
      }
      const response = await page.goto(url)
      if (!response) throw new Error(`no response for ${url}`)
      return { status: response.status(), body: await response.text() }
    } finally {
      await context.close()
    }
  },
}

describeClientSuite(
  adapter,
  {
    default: true,
    'MD5,SHA-256': true,
    'SHA-256': true,
    MD5: true,
    'SHA-256-sess': true,
    'MD5-sess': true,
    'SHA-512-256': 'Firefox has no SHA-512-256',
    userhash: true,
  },
  {
    algorithm: {
      // The strongest it supports, whatever the configured order.
      default: 'SHA-256',
      'MD5,SHA-256': 'SHA-256',
      'SHA-256': 'SHA-256',
      MD5: 'MD5',
      'SHA-256-sess': 'SHA-256-sess',
      'MD5-sess': 'MD5-sess',
      userhash: 'SHA-256',
    },
    userhash: false,
  }
)

describe('firefox: a page and its parallel same-origin requests', () => {
  it('after the page load, 8 parallel fetches are all 200 without another 401', async () => {
    const recorder = await startRecorder(e2e().gates.default)
    const context = await browser.createBrowserContext()
    try {
      const page = await context.newPage()
      await page.authenticate({ username: ALICE.name, password: ALICE.password })
      const loaded = await page.goto(`${recorder.url}/private/app/index`)
      expect(loaded?.status()).toBe(200)
      // Only the app's directory: the browser also fetches /favicon.ico, outside the protection
      // space of the page.
      const appChallenges = () =>
        recorder.exchanges.filter((e) => e.path.startsWith('/private/app/') && e.status === 401)
      expect(appChallenges()).toHaveLength(1)

      const results = await page.evaluate(async () => {
        const paths = Array.from({ length: 8 }, (_, i) => `/private/app/item-${i}`)
        return Promise.all(
          paths.map(async (path) => {
            const response = await fetch(path, { cache: 'no-store' })
            return { status: response.status, body: await response.text() }
          })
        )
      })
      expect(results.map((r) => r.status)).toEqual(Array(8).fill(200))
      for (const result of results) expectForwardedAs(parseEcho(result.body), ALICE.name)
      // No second challenge: every fetch was answered preemptively and accepted.
      expect(appChallenges()).toHaveLength(1)
      const fetched = recorder.exchanges.filter((e) => e.path.startsWith('/private/app/item-'))
      expect(fetched).toHaveLength(8)
      expect(fetched.every((e) => e.digest?.algorithm === 'SHA-256')).toBe(true)
      const ncs = fetched.map((e) => Number.parseInt(e.digest?.nc ?? '', 16))
      record({
        kind: 'check',
        client: 'firefox',
        check: 'page load, then 8 parallel fetches: all 200, no second 401',
        ok: true,
        detail: `nc in arrival order: ${ncs.join(' ')}`,
      })
    } finally {
      await context.close()
      await recorder.close()
    }
  })
})
