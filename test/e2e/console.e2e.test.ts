/**
 * The operator's console in Debian's Chromium (playwright-core) against a gate of its own under
 * `wrangler dev` (the shared authority and origin; the local stack's CONSOLE_GROUP=admin; brakes
 * after 3 failures so one shows): bob logs in with curl, alice opens the console, sees bob's
 * session with curl's address and user agent, and revokes it with a click; bob's next request on
 * that session is refused with a fresh challenge. A user name of markup sent by a guesser shows as
 * text. `E2E_WRITE_DOCS=1` writes the page as docs/console.png.
 */
import { join } from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunningWorker } from '../../scripts/stack/launcher.ts'
import { PROJECT_ROOT } from '../../scripts/stack/paths.ts'
import { baseHA1, computeResponse, hashOf } from '../../src/digest/algorithms.ts'
import { formatAuthorization, ncHex } from '../../src/digest/header.ts'
import { readNonceFields } from '../../src/digest/tokens.ts'
import type { AlgorithmName } from '../../src/digest/types.ts'
import { CHROMIUM, CHROMIUM_ARGS } from './support/chromium.ts'
import { digestSession, send } from './support/digest-session.ts'
import { parseDigestDirectives } from './support/recorder.ts'
import { run } from './support/run.ts'
import { startOwnGate } from './support/stack.ts'
import { ALICE, BOB, WRONG_PASSWORD } from './support/users.ts'

const CURL = '/usr/bin/curl'
const HOSTILE = '<img src=x onerror=alert(1)>'
const writeDocs = process.env.E2E_WRITE_DOCS === '1'

let gate: RunningWorker
let browser: Browser

beforeAll(async () => {
  ;[gate, browser] = await Promise.all([
    startOwnGate('gate-console', { BRAKE_USER_FAILURES: '3' }),
    chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS }),
  ])
})
afterAll(async () => {
  await browser?.close()
  await gate?.stop()
})

/** A session curl started: what it sent (curl -v), so the test can send its next request. */
interface CurlSession {
  handle: string
  directives: Map<string, string>
}

/** curl logs in as bob and fetches `path`: its status on stdout, with -v what it sent on stderr. */
function curlAsBob(path: string, extra: string[] = []) {
  return run(CURL, [
    '-sS',
    ...extra,
    '--digest',
    '-u',
    `${BOB.name}:${BOB.password}`,
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    `${gate.url}${path}`,
  ])
}

async function curlLogin(path: string): Promise<CurlSession> {
  const result = await curlAsBob(path, ['-v'])
  expect(result.stdout).toBe('200')
  const sent = [...result.stderr.matchAll(/^> Authorization: (Digest .*?)\r?$/gim)].at(-1)?.[1]
  if (!sent) throw new Error(`curl sent no Digest credentials:\n${result.stderr}`)
  const directives = parseDigestDirectives(sent)
  const handle = readNonceFields(directives.get('nonce') ?? '')?.handle
  if (!handle) throw new Error(`no context handle in curl's nonce: ${sent}`)
  return { handle, directives }
}

/** The request curl's session would send next: same nonce, cnonce and opaque, the next nc. */
async function continueCurl(s: CurlSession, path: string, nc: number): Promise<Response> {
  const d = s.directives
  const algorithm = (d.get('algorithm') ?? 'MD5') as AlgorithmName
  const realm = d.get('realm') ?? ''
  const nonce = d.get('nonce') ?? ''
  const cnonce = d.get('cnonce') ?? ''
  const ha1 = await baseHA1(hashOf(algorithm), BOB.name, realm, BOB.password)
  const response = await computeResponse({
    algorithm,
    ha1,
    nonce,
    nc: ncHex(nc),
    cnonce,
    qop: 'auth',
    method: 'GET',
    uri: path,
  })
  const authorization = formatAuthorization({
    username: BOB.name,
    userhash: false,
    realm,
    nonce,
    uri: path,
    response,
    algorithm,
    cnonce,
    opaque: d.get('opaque'),
    qop: 'auth',
    nc,
    ncRaw: ncHex(nc),
  })
  return fetch(`${gate.url}${path}`, { headers: { authorization } })
}

/**
 * Until the page shows something: the index hears of sessions, brakes and refusals off the
 * requests' paths (refusals up to a second later), and the page refreshes every 10 s on its own.
 */
async function untilShown(page: Page, what: string, shown: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 40; i++) {
    if (await shown()) return
    await page.waitForTimeout(250)
    await page.locator('#refresh').click()
  }
  throw new Error(`the console did not show ${what} within 10 s`)
}

describe('the operator’s console in Chromium', () => {
  it('alice revokes the session bob started with curl; bob’s next request gets a fresh 401', async () => {
    const bob = await curlLogin('/private/console/1')
    expect((await continueCurl(bob, '/private/console/2', 2)).status).toBe(200)
    // Other users and clients, for a console with something in every table.
    const doe = digestSession(gate.url, 'Jäsøn Doe', 'Secret, or not?', { clientIp: '192.0.2.10' })
    expect((await doe.get('/private/console/doe')).status).toBe(200)
    const guesser = '203.0.113.66'
    for (let i = 0; i < 4; i++) {
      const guess = digestSession(gate.url, BOB.name, `${WRONG_PASSWORD}-${i}`, {
        clientIp: guesser,
      })
      expect([401, 429]).toContain((await guess.get('/private/console/guess')).status)
    }
    const hostile = digestSession(gate.url, HOSTILE, WRONG_PASSWORD, { clientIp: '198.51.100.23' })
    expect((await hostile.get('/private/console/hostile')).status).toBe(401)
    // bob is no member of the console's group.
    const forbidden = await curlAsBob('/.digest-gate/console')
    expect(forbidden.stdout).toBe('403')

    const context = await browser.newContext({
      httpCredentials: { username: ALICE.name, password: ALICE.password },
      viewport: { width: 1440, height: 900 },
      colorScheme: 'light',
    })
    try {
      const page = await context.newPage()
      const dialogs: string[] = []
      const errors: string[] = []
      page.on('dialog', (dialog) => {
        dialogs.push(dialog.message())
        void dialog.dismiss()
      })
      page.on('pageerror', (error) => errors.push(error.message))
      page.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text())
      })
      const opened = await page.goto(`${gate.url}/.digest-gate/console`)
      expect(opened?.status()).toBe(200)
      const row = page.locator(`tr[data-handle="${bob.handle}"]`)
      await untilShown(page, "bob's session", async () => (await row.count()) > 0)
      // What curl's first request showed: its user agent and (wrangler dev's) client address.
      expect(await row.textContent()).toMatch(/curl\/[0-9.]+/)
      expect(await page.locator('#viewer').textContent()).toContain(`Signed in as ${ALICE.name}`)
      // The guesser's name as sent, as text: no element made of it, no script run.
      const sent = page.locator('#refusals td.sent')
      await untilShown(page, 'the refusals', async () =>
        (await sent.allTextContents()).includes(HOSTILE)
      )
      expect(await page.locator('img').count()).toBe(0)
      const brakes = page.locator('#brakes tbody')
      await untilShown(page, 'the brake', async () =>
        ((await brakes.textContent()) ?? '').includes(guesser)
      )
      if (writeDocs) {
        await page.screenshot({ path: join(PROJECT_ROOT, 'docs', 'console.png'), fullPage: true })
      }

      await row.locator('button', { hasText: 'Revoke' }).click()
      await expect
        .poll(() => page.locator('#status').textContent(), { timeout: 10_000 })
        .toBe('Revoked 1 session of bob.')
      await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(0)
      expect(dialogs).toEqual([])
      expect(errors).toEqual([])
    } finally {
      await context.close()
    }

    // bob's session carries on as curl would: refused at once, with a fresh (non-stale) challenge.
    const next = await continueCurl(bob, '/private/console/3', 3)
    expect(next.status).toBe(401)
    const challenge = next.headers.get('www-authenticate') ?? ''
    expect(challenge).not.toMatch(/stale\s*=\s*"?true/i)
    const nonce = /nonce="([^"]+)"/.exec(challenge)?.[1] ?? ''
    expect(readNonceFields(nonce)?.handle).not.toBe(bob.handle)
    // A client with the password logs in again: a new session.
    expect((await curlLogin('/private/console/4')).handle).not.toBe(bob.handle)
    // Unauthenticated, the API is a challenge like any protected path.
    expect((await send(`${gate.url}/.digest-gate/api/sessions`, '192.0.2.1')).status).toBe(401)
  })
})
