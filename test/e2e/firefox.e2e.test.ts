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
import { expectParallelFetchesPreemptive } from './support/parallel-fetches.ts'
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
      await expectParallelFetchesPreemptive(
        'firefox',
        recorder,
        (fn) => page.evaluate(fn),
        (fetched) => {
          expect(fetched.every((e) => e.digest?.algorithm === 'SHA-256')).toBe(true)
        }
      )
    } finally {
      await context.close()
      await recorder.close()
    }
  })
})
