/**
 * A controllable authority for fault tests: a node:http server on 127.0.0.1 that a gate reaches
 * through AUTHORITY_URL. In mode `ok` it relays each verification to the real reference authority;
 * the other modes are the faults the gate must survive without a 5xx other than 503:
 *   slow       relays, but only after `slowMs` (10 s: beyond the gate's AUTHORITY_TIMEOUT_MS)
 *   status500  500 with a JSON error body
 *   not-json   200 with an HTML body
 *   bad-verdict 200 with JSON that is not a v1 verdict (ok without a session key, odd result…)
 *   huge       200 with a 1 MiB JSON body
 *   not-http   bytes that are not an HTTP response, then close
 *   down       the connection is reset without an answer
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export const FAULT_MODES = [
  'slow',
  'status500',
  'not-json',
  'bad-verdict',
  'huge',
  'not-http',
  'down',
] as const

export type AuthorityMode = 'ok' | (typeof FAULT_MODES)[number]

export interface FakeAuthority {
  /** Base URL; the gate's AUTHORITY_URL is `${url}/v1/verify`. */
  readonly url: string
  /** Verification requests received, whatever the mode. */
  readonly calls: number
  mode: AuthorityMode
  close(): Promise<void>
}

/** Answers of `bad-verdict`, in turn: each is JSON but not a verdict the gate may accept. */
const BAD_VERDICTS = [
  { result: 'ok' },
  { result: 'ok', principal: { name: 'mallory', groups: ['admin'] }, algorithm: 'SHA-256' },
  {
    result: 'ok',
    principal: { name: 'mallory', groups: ['admin'] },
    sessionKey: 'not-hex',
    algorithm: 'SHA-256',
  },
  { result: 'maybe' },
  { result: 'denied', reason: 'because' },
  [],
  null,
  'ok',
]

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

export async function startFakeAuthority(
  upstream: string,
  options: { slowMs?: number } = {}
): Promise<FakeAuthority> {
  const slowMs = options.slowMs ?? 10_000
  const timers = new Set<NodeJS.Timeout>()
  const sockets = new Set<Socket>()
  let calls = 0
  let badVerdict = 0

  const relay = async (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const answer = await fetch(`${upstream}${req.url ?? '/'}`, {
      method: req.method,
      headers: {
        authorization: req.headers.authorization ?? '',
        'content-type': req.headers['content-type'] ?? 'application/json',
      },
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : new Uint8Array(body),
    })
    const text = await answer.text()
    if (res.destroyed) return
    res.writeHead(answer.status, {
      'content-type': answer.headers.get('content-type') ?? 'application/json',
    })
    res.end(text)
  }

  const answer = async (
    mode: AuthorityMode,
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer
  ) => {
    switch (mode) {
      case 'ok':
        return relay(req, res, body)
      case 'slow': {
        const timer = setTimeout(() => {
          timers.delete(timer)
          relay(req, res, body).catch(() => res.destroy())
        }, slowMs)
        timers.add(timer)
        // The gate gave up first: nothing reaches the real authority later.
        res.on('close', () => {
          clearTimeout(timer)
          timers.delete(timer)
        })
        return
      }
      case 'status500':
        res.writeHead(500, { 'content-type': 'application/json' })
        return res.end('{"error":"internal","message":"injected fault"}')
      case 'not-json':
        res.writeHead(200, { 'content-type': 'text/html' })
        return res.end('<html><body>502 Bad Gateway (but with a 200)</body></html>')
      case 'bad-verdict':
        res.writeHead(200, { 'content-type': 'application/json' })
        return res.end(JSON.stringify(BAD_VERDICTS[badVerdict++ % BAD_VERDICTS.length]))
      case 'huge':
        res.writeHead(200, { 'content-type': 'application/json' })
        return res.end(JSON.stringify({ result: 'ok', padding: 'x'.repeat(1 << 20) }))
      case 'not-http':
        return req.socket.end('SSH-2.0-OpenSSH_9.2\r\n\x00\xff garbage\r\n\r\n')
      case 'down':
        return req.socket.destroy()
    }
  }

  const state: { mode: AuthorityMode } = { mode: 'ok' }
  const server = createServer((req, res) => {
    const mode = state.mode
    if (req.url?.startsWith('/v1/verify')) calls++
    readBody(req)
      .then((body) => answer(mode, req, res, body))
      .catch(() => res.destroy())
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    get calls() {
      return calls
    },
    get mode() {
      return state.mode
    },
    set mode(mode: AuthorityMode) {
      state.mode = mode
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer)
        timers.clear()
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}
