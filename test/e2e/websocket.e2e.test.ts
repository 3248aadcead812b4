/**
 * WebSockets through the real gate (wrangler dev) to the demo origin's echo, which answers every
 * text message with the identity the gate forwarded on the handshake: `{"user":…,"echo":…}`.
 *   - Chromium, logged in on a page of the gate, opens a socket with its cached Digest credentials;
 *     without a login its handshake is refused;
 *   - a Node client (`ws`) computes the handshake's Authorization with the project's Digest client;
 *   - handshakes without valid credentials (none, replayed) are refused 401 and get no socket;
 *   - an open socket outlives the gate's origin timeout (a gate of its own, ORIGIN_TIMEOUT_MS=100).
 */
import type { IncomingHttpHeaders } from 'node:http'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { RunningWorker } from '../../scripts/stack/launcher.ts'
import { createDigestClient, type DigestClient } from '../../src/digest/client.ts'
import { CHROMIUM, CHROMIUM_ARGS } from './support/chromium.ts'
import { e2e } from './support/context.ts'
import { tailDecisions, workerLog } from './support/decisions.ts'
import { startOwnGate } from './support/stack.ts'
import { ALICE, BOB } from './support/users.ts'

/** Brake buckets of their own (the gate keys them on CF-Connecting-IP). */
const CLIENT_IP = '198.51.100.70'
const STRANGER_IP = '198.51.100.71'

/** What the demo origin's socket answers. */
interface SocketEcho {
  user: string | null
  echo: string
}

type Handshake =
  | { kind: 'open'; socket: WebSocket }
  | { kind: 'refused'; status: number; headers: IncomingHttpHeaders }

/** Opens a socket to `url` with `headers`; a refused handshake is an answer, not an error. */
function handshake(
  url: string,
  headers: Record<string, string>,
  protocols: string[] = []
): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols, { headers })
    socket.once('open', () => resolve({ kind: 'open', socket }))
    socket.once('unexpected-response', (_request, response) => {
      resolve({ kind: 'refused', status: response.statusCode ?? 0, headers: response.headers })
      response.resume()
      socket.terminate()
    })
    socket.once('error', reject)
  })
}

function opened(answer: Handshake): WebSocket {
  if (answer.kind !== 'open') throw new Error(`handshake refused with ${answer.status}`)
  return answer.socket
}

/** Sends `text`, resolves with the echo that comes back. */
function roundTrip(socket: WebSocket, text: string): Promise<SocketEcho> {
  return new Promise((resolve, reject) => {
    socket.once('message', (data, isBinary) => {
      if (isBinary) reject(new Error('binary message'))
      else resolve(JSON.parse(String(data)) as SocketEcho)
    })
    socket.send(text)
  })
}

function close(socket: WebSocket): Promise<number> {
  return new Promise((resolve) => {
    socket.once('close', (code) => resolve(code))
    socket.close(1000, 'done')
  })
}

const wsUrl = (base: string, path: string) => `${base.replace(/^http/, 'ws')}${path}`

/** Alice's Digest client after one request (so it holds a challenge), as CLIENT_IP. */
async function loggedIn(base: string): Promise<DigestClient> {
  const alice = createDigestClient({
    username: ALICE.name,
    password: ALICE.password,
    fetch: (input, init) => {
      const headers = new Headers(init?.headers)
      headers.set('cf-connecting-ip', CLIENT_IP)
      return fetch(input, { ...init, headers })
    },
  })
  const response = await alice.fetch(`${base}/private/ws-login`)
  await response.body?.cancel()
  expect(response.status).toBe(200)
  return alice
}

async function authorizationFor(client: DigestClient, url: string): Promise<string> {
  const header = await client.authorizationFor('GET', url)
  if (header === undefined) throw new Error('no challenge known')
  return header
}

describe('a Node client (ws) with the Digest client', () => {
  let gate: string
  let alice: DigestClient
  beforeAll(async () => {
    gate = e2e().gates.default
    alice = await loggedIn(gate)
  })

  it('opens a socket with a computed Authorization and exchanges messages as alice', async () => {
    const authorization = await authorizationFor(alice, `${gate}/private/ws`)
    const socket = opened(
      await handshake(
        wsUrl(gate, '/private/ws'),
        { authorization, 'cf-connecting-ip': CLIENT_IP },
        ['echo-v1', 'other']
      )
    )
    // The origin's choice of subprotocol came back through the gate.
    expect(socket.protocol).toBe('echo-v1')
    for (const text of ['hello', 'ünïcödé ✓', 'x'.repeat(70_000)]) {
      expect(await roundTrip(socket, text)).toEqual({ user: ALICE.name, echo: text })
    }
    expect(await close(socket)).toBe(1000)
  })

  it('a handshake without credentials: 401 with a Digest challenge, no socket', async () => {
    const decisions = tailDecisions(workerLog('gate'))
    const answer = await handshake(wsUrl(gate, '/private/ws'), { 'cf-connecting-ip': STRANGER_IP })
    expect(answer).toMatchObject({ kind: 'refused', status: 401 })
    if (answer.kind === 'refused') expect(answer.headers['www-authenticate']).toMatch(/^Digest /)
    const [decision] = await decisions.waitFor(1)
    expect(decision).toMatchObject({ outcome: 'challenge', status: 401, path: '/private/ws' })
  })

  it("replayed handshake headers: 401 stale=true, no socket; alice's next handshake works", async () => {
    const authorization = await authorizationFor(alice, `${gate}/private/ws`)
    const first = opened(
      await handshake(wsUrl(gate, '/private/ws'), { authorization, 'cf-connecting-ip': CLIENT_IP })
    )
    await close(first)
    const replayed = await handshake(wsUrl(gate, '/private/ws'), {
      authorization,
      'cf-connecting-ip': STRANGER_IP,
    })
    expect(replayed).toMatchObject({ kind: 'refused', status: 401 })
    if (replayed.kind === 'refused')
      expect(replayed.headers['www-authenticate']).toMatch(/stale=true/)

    const next = await authorizationFor(alice, `${gate}/private/ws`)
    const again = opened(
      await handshake(wsUrl(gate, '/private/ws'), {
        authorization: next,
        'cf-connecting-ip': CLIENT_IP,
      })
    )
    expect(await roundTrip(again, 'still alice')).toEqual({ user: ALICE.name, echo: 'still alice' })
    await close(again)
  })

  it('a public route: a socket without identity', async () => {
    const socket = opened(
      await handshake(wsUrl(gate, '/public/ws'), {
        'x-auth-user': BOB.name,
        'cf-connecting-ip': STRANGER_IP,
      })
    )
    expect(await roundTrip(socket, 'hi')).toEqual({ user: null, echo: 'hi' })
    await close(socket)
  })
})

describe('the origin timeout', () => {
  let own: RunningWorker
  beforeAll(async () => {
    own = await startOwnGate('gate-ws-timeout', { ORIGIN_TIMEOUT_MS: '100' })
  })
  afterAll(async () => {
    await own?.stop()
  })

  it('an open socket outlives ORIGIN_TIMEOUT_MS (100 ms) tenfold', async () => {
    const alice = await loggedIn(own.url)
    const authorization = await authorizationFor(alice, `${own.url}/private/ws`)
    const socket = opened(
      await handshake(wsUrl(own.url, '/private/ws'), {
        authorization,
        'cf-connecting-ip': CLIENT_IP,
      })
    )
    expect(await roundTrip(socket, 'at once')).toEqual({ user: ALICE.name, echo: 'at once' })
    await new Promise((resolve) => setTimeout(resolve, 1000))
    expect(socket.readyState).toBe(WebSocket.OPEN)
    expect(await roundTrip(socket, 'a second later')).toEqual({
      user: ALICE.name,
      echo: 'a second later',
    })
    expect(await close(socket)).toBe(1000)
  })
})

describe('chromium', () => {
  let browser: Browser
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  })
  afterAll(async () => {
    await browser?.close()
  })

  it('a page of the gate, after the login, opens a socket and gets the echo as alice', async () => {
    const gate = e2e().gates.default
    const decisions = tailDecisions(workerLog('gate'))
    const context = await browser.newContext({
      httpCredentials: { username: ALICE.name, password: ALICE.password },
    })
    try {
      const page = await context.newPage()
      expect((await page.goto(`${gate}/private/ws-page`))?.status()).toBe(200)
      const echoes = await page.evaluate(
        async (url) => {
          // The browser's own (the bare name would be this module's `ws` import).
          const socket = new globalThis.WebSocket(url)
          const received: string[] = []
          await new Promise<void>((resolve, reject) => {
            socket.onerror = () => reject(new Error('the socket failed'))
            socket.onopen = () => {
              socket.send('from chromium')
              socket.send('twice')
            }
            socket.onmessage = (event) => {
              received.push(String(event.data))
              if (received.length === 2) resolve()
            }
          })
          socket.close(1000)
          return received
        },
        wsUrl(gate, '/private/ws')
      )
      expect(echoes.map((text) => JSON.parse(text))).toEqual([
        { user: ALICE.name, echo: 'from chromium' },
        { user: ALICE.name, echo: 'twice' },
      ])
      // Chromium sent its cached credentials on the handshake (same directory as the page: no
      // 401 first), and the gate accepted them: one decision, with the origin's 101. Usually verified at the edge; but
      // Chromium may meanwhile get /favicon.ico's challenge and send the handshake on that fresh
      // nonce, a login of its own (outcome `authenticated`), as seen under load.
      const handshakes = (await decisions.quiet()).filter((d) => d.path === '/private/ws')
      expect(handshakes.map((d) => [d.status, d.user])).toEqual([[101, ALICE.name]])
      expect(['verified_at_edge', 'authenticated']).toContain(handshakes[0]?.outcome)
    } finally {
      await context.close()
    }
  })

  it('a page on a public route, with no login, cannot open a private socket (401)', async () => {
    const gate = e2e().gates.default
    const decisions = tailDecisions(workerLog('gate'))
    const context = await browser.newContext()
    try {
      const page = await context.newPage()
      expect((await page.goto(`${gate}/public/ws-page`))?.status()).toBe(200)
      const outcome = await page.evaluate(
        (url) =>
          new Promise<string>((resolve) => {
            const socket = new globalThis.WebSocket(url)
            socket.onopen = () => resolve('open')
            socket.onclose = (event) => resolve(`closed ${event.code}`)
          }),
        wsUrl(gate, '/private/ws')
      )
      // 1006: the handshake failed (the page is not told why).
      expect(outcome).toBe('closed 1006')
      const handshakes = (await decisions.quiet()).filter((d) => d.path === '/private/ws')
      expect(handshakes.map((d) => [d.outcome, d.status])).toEqual([['challenge', 401]])
    } finally {
      await context.close()
    }
  })
})
