/**
 * Sending hostile requests in bulk to 127.0.0.1, bounded: header values go out byte for byte
 * (node:http writes header strings as Latin-1, so U+0080-U+00FF are single non-UTF-8 bytes), over
 * keep-alive connections; requests that node:http would refuse to write (control bytes, bare CR
 * or LF, malformed header lines) go over a raw socket, one connection each.
 */
import { Agent, type RequestOptions, request } from 'node:http'
import { connect } from 'node:net'

export interface HeaderCase {
  category: string
  /** Authorization header lines (several lines = duplicate headers); Latin-1 text only. */
  values: string[]
  /** Sent as this client address (CF-Connecting-IP); default: the batch's. */
  clientIp?: string
}

export interface RawCase {
  category: string
  /** The whole request, bytes as they go on the wire. */
  bytes: Buffer
}

export interface Outcome {
  category: string
  /** 0: the connection ended without an HTTP answer. */
  status: number
}

/** Runs `tasks` with at most `limit` in flight; results in task order. */
export async function bounded<T>(limit: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length)
  let next = 0
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++
      results[index] = await (tasks[index] as () => Promise<T>)()
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker))
  return results
}

const TIMEOUT_MS = 15_000

/** One GET with the case's Authorization lines over `agent`; the status (0 on a dropped answer). */
function sendHeaderCase(
  agent: Agent,
  url: URL,
  item: HeaderCase,
  clientIp: string
): Promise<Outcome> {
  const options: RequestOptions = {
    agent,
    host: url.hostname,
    port: url.port,
    path: url.pathname + url.search,
    method: 'GET',
    // Raw [name, value, …] form: one header line per Authorization value.
    headers: [
      'host',
      url.host,
      'cf-connecting-ip',
      item.clientIp ?? clientIp,
      ...item.values.flatMap((value) => ['authorization', value]),
    ],
    timeout: TIMEOUT_MS,
  }
  return new Promise((resolve) => {
    const req = request(options, (res) => {
      res.resume()
      res.on('end', () => resolve({ category: item.category, status: res.statusCode ?? 0 }))
      res.on('error', () => resolve({ category: item.category, status: 0 }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => resolve({ category: item.category, status: 0 }))
    req.end()
  })
}

export async function sendHeaderCases(
  target: string,
  cases: HeaderCase[],
  options: { clientIp: string; concurrency: number }
): Promise<Outcome[]> {
  const url = new URL(target)
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency })
  try {
    return await bounded(
      options.concurrency,
      cases.map((item) => () => sendHeaderCase(agent, url, item, options.clientIp))
    )
  } finally {
    agent.destroy()
  }
}

/** Sends raw bytes on a fresh connection and reads the status line of the answer, if any. */
function sendRawCase(host: string, port: number, item: RawCase): Promise<Outcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let settled = false
    const done = () => {
      if (settled) return
      settled = true
      socket.destroy()
      const head = Buffer.concat(chunks).subarray(0, 64).toString('latin1')
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(head)
      resolve({ category: item.category, status: match ? Number(match[1]) : 0 })
    }
    const socket = connect({ host, port }, () => socket.write(item.bytes))
    socket.setTimeout(TIMEOUT_MS, done)
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      // The status line is all we need.
      if (Buffer.concat(chunks).includes('\r\n')) done()
    })
    socket.on('end', done)
    socket.on('error', done)
    socket.on('close', done)
  })
}

export function sendRawCases(
  target: string,
  cases: RawCase[],
  options: { concurrency: number }
): Promise<Outcome[]> {
  const url = new URL(target)
  return bounded(
    options.concurrency,
    cases.map((item) => () => sendRawCase(url.hostname, Number(url.port), item))
  )
}

/** Status histogram, e.g. { '400': 5012, '401': 5100 }. */
export function histogram(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const { status } of outcomes) counts[status] = (counts[status] ?? 0) + 1
  return counts
}
