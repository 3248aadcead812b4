/**
 * A transparent HTTP recorder between a client under test and a gate: forwards every request
 * unchanged and notes what the client sent (the Digest directives that say how it answered the
 * challenge, never the response hash) and what the gate answered. The interop matrix and the
 * per-client checks (nc increments, fresh cnonce, 401 round trips) read these records.
 */
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
} from 'node:http'
import type { AddressInfo } from 'node:net'

/** The Authorization directives a client chose (absent ones are undefined). */
export interface SentDigest {
  username?: string
  algorithm?: string
  qop?: string
  nc?: string
  cnonce?: string
  userhash?: string
  opaque?: boolean
  uri?: string
}

export interface Exchange {
  method: string
  path: string
  /** The client sent an Authorization header, and with which scheme. */
  scheme?: string
  digest?: SentDigest
  status: number
  /** Number of `WWW-Authenticate: Digest` challenges in the answer. */
  challenges: number
  /** The answer's challenges carried stale=true. */
  stale: boolean
  /** The `algorithm` of each challenge in the answer, in the order sent. */
  offered: string[]
}

export interface Recorder {
  /** The recorder's base URL: point the client here instead of at the gate. */
  readonly url: string
  readonly exchanges: Exchange[]
  clear(): void
  close(): Promise<void>
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
])

/** Splits the directives of one Digest credentials header (quoted strings may hold commas). */
export function parseDigestDirectives(header: string): Map<string, string> {
  const directives = new Map<string, string>()
  const body = header.replace(/^\s*digest\s+/i, '')
  const pattern = /([A-Za-z0-9_*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(?:,|$)/g
  for (const match of body.matchAll(pattern)) {
    const value = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : (match[3] ?? '')
    directives.set((match[1] as string).toLowerCase(), value)
  }
  return directives
}

function sentDigest(header: string): SentDigest {
  const d = parseDigestDirectives(header)
  return {
    username: d.get('username') ?? d.get('username*'),
    algorithm: d.get('algorithm'),
    qop: d.get('qop'),
    nc: d.get('nc'),
    cnonce: d.get('cnonce'),
    userhash: d.get('userhash'),
    opaque: d.has('opaque'),
    uri: d.get('uri'),
  }
}

function challengesOf(response: IncomingMessage): {
  count: number
  stale: boolean
  offered: string[]
} {
  let count = 0
  let stale = false
  const offered: string[] = []
  const raw = response.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() !== 'www-authenticate') continue
    const value = raw[i + 1] as string
    // One header line may carry several challenges; count the Digest scheme tokens.
    count += value.match(/(?:^|,)\s*digest\s/gi)?.length ?? 0
    if (/stale\s*=\s*"?true/i.test(value)) stale = true
    for (const match of value.matchAll(/(?:^|[\s,])algorithm\s*=\s*"?([A-Za-z0-9-]+)/gi)) {
      offered.push(match[1] as string)
    }
  }
  return { count, stale, offered }
}

export async function startRecorder(target: string): Promise<Recorder> {
  const targetUrl = new URL(target)
  const agent = new Agent({ keepAlive: true })
  const exchanges: Exchange[] = []
  const server: Server = createServer((req, res) => {
    const authorization = req.headers.authorization
    const headers: Record<string, string | string[]> = {}
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value
    }
    const upstream = httpRequest(
      {
        host: targetUrl.hostname,
        port: targetUrl.port,
        method: req.method,
        path: req.url,
        headers,
        agent,
      },
      (answer) => {
        const { count, stale, offered } = challengesOf(answer)
        exchanges.push({
          method: req.method ?? 'GET',
          path: req.url ?? '/',
          scheme: authorization?.split(/\s+/, 1)[0],
          digest:
            authorization && /^\s*digest\s/i.test(authorization)
              ? sentDigest(authorization)
              : undefined,
          status: answer.statusCode ?? 0,
          challenges: count,
          stale,
          offered,
        })
        const raw: string[] = []
        for (let i = 0; i < answer.rawHeaders.length; i += 2) {
          const name = answer.rawHeaders[i] as string
          if (!HOP_BY_HOP.has(name.toLowerCase()))
            raw.push(name, answer.rawHeaders[i + 1] as string)
        }
        res.writeHead(answer.statusCode ?? 502, raw)
        answer.pipe(res)
      }
    )
    upstream.on('error', (error) => {
      exchanges.push({
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        status: 502,
        challenges: 0,
        stale: false,
        offered: [],
      })
      res.writeHead(502, { 'content-type': 'text/plain' })
      res.end(`recorder: upstream error: ${error.message}`)
    })
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    exchanges,
    clear: () => {
      exchanges.length = 0
    },
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
