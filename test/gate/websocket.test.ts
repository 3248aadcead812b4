/**
 * WebSockets through the gate: an authenticated handshake is forwarded as an upgrade and the
 * origin's socket comes back to the client; a handshake without valid credentials (none, wrong,
 * replayed, not granted) never reaches the origin; public routes get sockets without identity;
 * other upgrades stay stripped; the origin timeout covers the handshake, not the socket's life.
 * The in-test origin answers a handshake with a WebSocketPair echo that names the user it saw.
 */
import { exports } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  captureDecisions,
  challengeOf,
  client,
  type FakeAuthority,
  type FakeOrigin,
  GATE,
  type GateFetch,
  gate,
  installPeers,
} from './fakes.ts'

let authority: FakeAuthority
let origin: FakeOrigin
beforeEach(() => {
  ;({ authority, origin } = installPeers())
  vi.spyOn(console, 'log').mockImplementation(() => {})
})
afterEach(() => {
  vi.useRealTimers()
  vi.restoreAllMocks()
})

const worker: GateFetch = (req) => exports.default.fetch(req)

/** What a browser sends to open a socket (RFC 6455 §4.1; the key is the RFC's example). */
const HANDSHAKE = {
  Upgrade: 'websocket',
  Connection: 'keep-alive, Upgrade',
  'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
  'Sec-WebSocket-Version': '13',
  'Sec-WebSocket-Protocol': 'chat, superchat',
}

/** The client's end of an accepted socket, its messages queued. */
function openSocket(res: Response) {
  const ws = res.webSocket
  if (!ws) throw new Error(`no socket in the answer (status ${res.status})`)
  ws.accept()
  const queued: string[] = []
  const waiting: ((text: string) => void)[] = []
  ws.addEventListener('message', (event) => {
    const text = String(event.data)
    const resolve = waiting.shift()
    if (resolve) resolve(text)
    else queued.push(text)
  })
  return {
    /** Sends `text`, resolves with the next message (the echo, parsed). */
    async roundTrip(text: string): Promise<unknown> {
      const next = new Promise<string>((resolve) => {
        const first = queued.shift()
        if (first === undefined) waiting.push(resolve)
        else resolve(first)
      })
      ws.send(text)
      return JSON.parse(await next)
    },
    close: () => ws.close(1000, 'done'),
  }
}

describe('an authenticated handshake', () => {
  it('is logged with the status the client got: 101 once the socket opened', async () => {
    const decisions = captureDecisions()
    const alice = client(worker, 'alice', 'wonderland')
    const res = await alice.fetch('/private/ws', { headers: HANDSHAKE })
    expect(res.status).toBe(101)
    openSocket(res).close()
    const accepted = decisions.filter((d) => d.outcome === 'authenticated')
    expect(accepted.map((d) => d.status)).toEqual([101])
    // A login that is not a handshake keeps the gate's own status.
    await client(worker, 'bob', 'builder').fetch('/private/plain')
    expect(decisions.filter((d) => d.outcome === 'authenticated').map((d) => d.status)).toEqual([
      101, 200,
    ])
  })

  it('is forwarded as an upgrade, and the socket echoes as the user', async () => {
    const alice = client(worker, 'alice', 'wonderland')
    const res = await alice.fetch('/private/ws?room=1', {
      headers: { ...HANDSHAKE, X_Auth_User: 'mallory', 'Keep-Alive': 'timeout=5' },
    })
    expect(res.status).toBe(101)
    // The origin's own answer headers come back; a 101 carries no Authentication-Info.
    expect(res.headers.get('sec-websocket-protocol')).toBe('chat')
    expect(res.headers.get('authentication-info')).toBeNull()
    expect(alice.sent.map((s) => s.status)).toEqual([401, 101])

    // Only the authenticated handshake reached the origin, as an upgrade and as alice.
    expect(origin.requests).toHaveLength(1)
    const seen = origin.requests[0]
    expect(seen?.method).toBe('GET')
    expect(seen?.path).toBe('/private/ws?room=1')
    expect(seen?.headers).toMatchObject({
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': HANDSHAKE['Sec-WebSocket-Key'],
      'sec-websocket-version': '13',
      'sec-websocket-protocol': 'chat, superchat',
      'x-auth-user': 'alice',
      'x-auth-groups': 'admin',
    })
    expect(seen?.headers['x-auth-assertion']).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/)
    expect(seen?.headers.authorization).toBeUndefined()
    expect(seen?.headers.x_auth_user).toBeUndefined()
    expect(seen?.headers['keep-alive']).toBeUndefined()

    const socket = openSocket(res)
    expect(await socket.roundTrip('hello')).toEqual({ user: 'alice', echo: 'hello' })
    expect(await socket.roundTrip('again')).toEqual({ user: 'alice', echo: 'again' })
    expect(origin.socketMessages).toEqual(['hello', 'again'])
    socket.close()
  })

  it('reconnects on the same session are verified at the edge', async () => {
    const bob = client(worker, 'bob', 'builder')
    for (let i = 0; i < 3; i++) {
      const res = await bob.fetch('/private/ws', { headers: HANDSHAKE })
      expect(res.status).toBe(101)
      openSocket(res).close()
    }
    // One 401, then preemptive credentials on every handshake; one initial authentication.
    expect(bob.sent.map((s) => s.status)).toEqual([401, 101, 101, 101])
    expect(authority.calls).toBe(1)
    expect(origin.requests.map((r) => r.headers['x-auth-user'])).toEqual(['bob', 'bob', 'bob'])
  })
})

describe('a handshake without valid credentials never reaches the origin', () => {
  it('none: 401 with a challenge, no socket', async () => {
    const res = await worker(new Request(`${GATE}/private/ws`, { headers: HANDSHAKE }))
    expect(res.status).toBe(401)
    expect(res.webSocket).toBeNull()
    expect(challengeOf(res).nonce).not.toBe('')
    expect(authority.calls).toBe(0)
    expect(origin.requests).toHaveLength(0)
  })

  it('a wrong password: 401', async () => {
    const res = await client(worker, 'alice', 'not the password').fetch('/private/ws', {
      headers: HANDSHAKE,
    })
    expect(res.status).toBe(401)
    expect(res.webSocket).toBeNull()
    expect(origin.requests).toHaveLength(0)
  })

  it('replayed handshake headers: refused like any replay', async () => {
    const alice = client(worker, 'alice', 'wonderland')
    const first = await alice.fetch('/private/ws', { headers: HANDSHAKE })
    expect(first.status).toBe(101)
    openSocket(first).close()
    const captured = alice.sent.find((s) => s.status === 101)?.authorization ?? ''
    expect(captured).toMatch(/^Digest /)

    const replayed = await worker(
      new Request(`${GATE}/private/ws`, {
        headers: { ...HANDSHAKE, authorization: captured, 'cf-connecting-ip': '203.0.113.99' },
      })
    )
    expect(replayed.status).toBe(401)
    expect(replayed.webSocket).toBeNull()
    // The response verified, so the real client would just retry: stale=true, no prompt.
    expect(challengeOf(replayed).stale).toBe(true)
    expect(origin.requests).toHaveLength(1)
  })

  it('a user whose groups do not grant the path: 403', async () => {
    const res = await client(worker, 'bob', 'builder').fetch('/admin/ws', { headers: HANDSHAKE })
    expect(res.status).toBe(403)
    expect(res.webSocket).toBeNull()
    expect(origin.requests).toHaveLength(0)
  })
})

describe('public routes and other upgrades', () => {
  it('a handshake on a public route gets a socket, with no identity', async () => {
    const res = await worker(
      new Request(`${GATE}/public/ws`, { headers: { ...HANDSHAKE, 'X-Auth-User': 'mallory' } })
    )
    expect(res.status).toBe(101)
    const seen = origin.requests[0]?.headers ?? {}
    expect(seen.upgrade).toBe('websocket')
    expect(seen['x-auth-user']).toBeUndefined()
    const socket = openSocket(res)
    expect(await socket.roundTrip('hi')).toEqual({ user: null, echo: 'hi' })
    socket.close()
  })

  it.each([
    [
      'GET',
      { Upgrade: 'h2c', Connection: 'Upgrade, HTTP2-Settings', 'HTTP2-Settings': 'AAMAAABk' },
    ],
    ['GET', { Upgrade: 'websocket, h2c', Connection: 'Upgrade' }],
    ['POST', { Upgrade: 'websocket', Connection: 'Upgrade' }],
  ])('%s with Upgrade %o: forwarded as a plain request', async (method, headers) => {
    // Straight into the app: a Fetcher (exports.default) turns any request with
    // `Upgrade: websocket` into a GET handshake before the gate sees it.
    const res = await gate()(new Request(`${GATE}/public/page`, { method, headers }))
    expect(res.status).toBe(200)
    expect(res.webSocket).toBeNull()
    const seen = origin.requests[0]?.headers ?? {}
    expect(origin.requests[0]?.method).toBe(method)
    expect(seen.upgrade).toBeUndefined()
    expect(seen.connection).toBeUndefined()
  })
})

describe('the origin timeout', () => {
  const slowGate = () => gate({ ORIGIN_TIMEOUT_MS: '100' })

  it('covers the handshake: an origin that does not answer it gets 504', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    origin.hang = true
    const pending = slowGate()(new Request(`${GATE}/public/ws`, { headers: HANDSHAKE }))
    await vi.waitFor(() => expect(origin.requests).toHaveLength(1))
    vi.advanceTimersByTime(100)
    const res = await pending
    expect(res.status).toBe(504)
    expect(res.headers.get('retry-after')).toBe('5')
  })

  it('ends with the handshake: the open socket is never aborted', async () => {
    const res = await slowGate()(new Request(`${GATE}/public/ws`, { headers: HANDSHAKE }))
    expect(res.status).toBe(101)
    // Real time, twice the timeout: AbortSignal.timeout() runs on a timer no fake can hold.
    await scheduler.wait(200)
    expect(origin.signals[0]?.aborted).toBe(false)
    const socket = openSocket(res)
    expect(await socket.roundTrip('still here')).toEqual({ user: null, echo: 'still here' })
    socket.close()
  })
})
