/**
 * Debian's Chromium, headless, driven by playwright-core (no browser download). It takes the
 * first challenge it supports, but workerd folds the gate's challenges into one line, whose last
 * `algorithm` wins: the gate puts SHA-256 there for it. It knows MD5, SHA-256 and their -sess
 * forms and userhash, not SHA-512-256. After one challenge it answers same-directory requests
 * preemptively, from a shared counter, so parallel fetches arrive with nc values out of order.
 */
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CHROMIUM, CHROMIUM_ARGS } from './support/chromium.ts'
import { type ClientAdapter, describeClientSuite } from './support/client-suite.ts'
import { e2e } from './support/context.ts'
import { expectParallelFetchesPreemptive } from './support/parallel-fetches.ts'
import { startRecorder } from './support/recorder.ts'
import { ALICE } from './support/users.ts'

let browser: Browser

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
})
afterAll(async () => {
  await browser?.close()
})

const adapter: ClientAdapter = {
  id: 'chromium',
  version: () => `Chromium ${browser.version()}`,
  async get(url, credentials) {
    const context = await browser.newContext(
      credentials
        ? { httpCredentials: { username: credentials.user, password: credentials.password } }
        : {}
    )
    try {
      const page = await context.newPage()
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
    'SHA-512-256': 'Chromium skips SHA-512-256 challenges',
    userhash: true,
  },
  {
    algorithm: {
      // The strongest it supports, whatever the configured order.
      default: 'SHA-256',
      'MD5,SHA-256': 'SHA-256',
      userhash: 'SHA-256',
      'SHA-256': 'SHA-256',
      MD5: 'MD5',
      'SHA-256-sess': 'SHA-256-sess',
      'MD5-sess': 'MD5-sess',
    },
    userhash: true,
  }
)

describe('chromium: a page and its parallel same-origin requests', () => {
  it('after the page load, 8 parallel fetches are all 200 without another 401', async () => {
    const recorder = await startRecorder(e2e().gates.default)
    const context = await browser.newContext({
      httpCredentials: { username: ALICE.name, password: ALICE.password },
    })
    try {
      const page = await context.newPage()
      const loaded = await page.goto(`${recorder.url}/private/app/index`)
      expect(loaded?.status()).toBe(200)
      await expectParallelFetchesPreemptive(
        'chromium',
        recorder,
        (fn) => page.evaluate(fn),
        (fetched) => {
          expect(fetched.every((e) => e.digest !== undefined)).toBe(true)
          // Chromium numbers preemptive requests from a shared counter at request start: out of
          // order on the wire, and not always distinct; recorded for the document.
        }
      )
    } finally {
      await context.close()
      await recorder.close()
    }
  })
})
