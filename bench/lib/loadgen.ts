/**
 * A small, bounded HTTP/1.1 load generator over raw keep-alive sockets. Every request is a
 * precomputed byte string (Authorization included), so the timed phase only writes bytes and
 * parses status lines: no client hashing, no header building, no HTTP library in the loop.
 *
 * Each connection has one request in flight. Requests come either from the connection's own
 * queue (one session per connection: its nc values arrive in order) or from one queue shared by
 * every connection (one session over many connections, as a browser does: nc values arrive out of
 * order, by at most the number of connections). The run is bounded by time and by the queues.
 */
import { connect, type Socket } from 'node:net'

export interface LoadPlan {
  host: string
  port: number
  connections: number
  /** Raw requests. 'per-connection': queue i feeds connection i; 'shared': queue 0 feeds all. */
  queues: string[][]
  assignment: 'per-connection' | 'shared'
  /** Cycle through the queue (requests without nc, which may be sent again). */
  repeat: boolean
  /** Responses in this leading period are not measured (JIT, connection pools, caches). */
  warmupMs: number
  /** Measured period; the run stops earlier when a queue runs dry. */
  durationMs: number
  /** Collect this response header (lower-case name) from the first `limit` responses. */
  capture?: { header: string; limit: number }
}

export interface LoadResult {
  /** Length of the measured window (ms): durationMs, or less when a queue ran dry. */
  windowMs: number
  /** Responses completed inside the window, and how many of them were 2xx. */
  completed: number
  ok: number
  /** Latency (ms) of requests sent inside the window. */
  latency: { p50: number; p90: number; p99: number; max: number; mean: number }
  /** Every response of the run (warm-up and drain included), by status. */
  statuses: Record<string, number>
  sent: number
  /** Connections that failed or closed with a request in flight. */
  errors: number
  /** A queue ran dry before the time bound. */
  exhausted: boolean
  /** The run hit its hard timeout (a request never completed). */
  timedOut: boolean
  captured: string[]
  /** CPU time of the load generator's thread during the run (ms). */
  cpuMs: number
  /** Requests taken from each queue (sent, or lost with a failed connection). */
  consumed: number[]
  /** Every latency behind `latency` (ms), to pool several runs. */
  latencies: number[]
}

const CRLFCRLF = Buffer.from('\r\n\r\n')
const CRLF = Buffer.from('\r\n')
/** After the time bound, requests in flight get this long to finish. */
const DRAIN_MS = 10_000

interface Source {
  next(): Buffer | undefined
  /** Requests taken from the queue so far. */
  taken(): number
}

function sources(plan: LoadPlan): { feeds: Source[]; queues: Source[] } {
  const make = (items: Buffer[]): Source => {
    let i = 0
    let taken = 0
    return {
      next: () => {
        if (i >= items.length) {
          if (!plan.repeat || items.length === 0) return undefined
          i = 0
        }
        taken += 1
        return items[i++]
      },
      taken: () => taken,
    }
  }
  const queues = plan.queues.map((q) => make(q.map((r) => Buffer.from(r, 'latin1'))))
  if (plan.assignment === 'shared') {
    const shared = queues[0] ?? make([])
    return { feeds: Array.from({ length: plan.connections }, () => shared), queues }
  }
  if (queues.length !== plan.connections) {
    throw new Error(`per-connection load needs ${plan.connections} queues, got ${queues.length}`)
  }
  return { feeds: queues, queues }
}

/** End offset of the complete response at the start of `buf`, or -1 when more bytes are needed. */
function responseEnd(buf: Buffer, headEnd: number, head: string): number {
  const bodyStart = headEnd + 4
  if (/\r\ntransfer-encoding:[ \t]*chunked/i.test(head)) {
    let pos = bodyStart
    for (;;) {
      const lineEnd = buf.indexOf(CRLF, pos)
      if (lineEnd < 0) return -1
      const size = Number.parseInt(buf.toString('latin1', pos, lineEnd), 16)
      if (size === 0) {
        // No trailers is the common case: "0\r\n\r\n".
        if (buf.length >= lineEnd + 4 && buf[lineEnd + 2] === 13 && buf[lineEnd + 3] === 10) {
          return lineEnd + 4
        }
        const end = buf.indexOf(CRLFCRLF, lineEnd)
        return end < 0 ? -1 : end + 4
      }
      pos = lineEnd + 2 + size + 2
      if (pos > buf.length) return -1
    }
  }
  const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head)
  const end = bodyStart + (length ? Number(length[1]) : 0)
  return buf.length >= end ? end : -1
}

/** Nearest-rank percentile of ascending values. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)
  return sorted[Math.max(0, index)] ?? 0
}

export function latencySummary(latencies: readonly number[]): LoadResult['latency'] {
  const sorted = Float64Array.from(latencies).sort()
  let sum = 0
  for (const l of latencies) sum += l
  return {
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length > 0 ? (sorted[sorted.length - 1] ?? 0) : 0,
    mean: latencies.length > 0 ? sum / latencies.length : 0,
  }
}

function openSocket(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port })
    socket.setNoDelay(true)
    socket.once('connect', () => {
      socket.off('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

export async function runLoad(plan: LoadPlan): Promise<LoadResult> {
  const { feeds, queues } = sources(plan)
  const sockets = await Promise.all(
    Array.from({ length: plan.connections }, () => openSocket(plan.host, plan.port))
  )
  const latencies: number[] = []
  const statuses: Record<string, number> = {}
  const captured: string[] = []
  const captureRe = plan.capture
    ? new RegExp(`\\r\\n${plan.capture.header}:[ \\t]*([^\\r\\n]*)`, 'gi')
    : undefined
  let completed = 0
  let ok = 0
  let sent = 0
  let errors = 0
  let exhausted = false
  let timedOut = false

  const cpuStart = process.threadCpuUsage()
  const start = performance.now()
  const warmupEnd = start + plan.warmupMs
  const deadline = warmupEnd + plan.durationMs
  let windowEnd = deadline
  let stopping = false
  const stop = (at: number) => {
    if (stopping) return
    stopping = true
    windowEnd = Math.min(deadline, at)
  }

  await new Promise<void>((resolveRun) => {
    let open = plan.connections
    const release = () => {
      open -= 1
      if (open === 0) {
        clearTimeout(hardStop)
        resolveRun()
      }
    }
    const hardStop = setTimeout(
      () => {
        timedOut = true
        for (const s of sockets) s.destroy()
      },
      plan.warmupMs + plan.durationMs + DRAIN_MS
    )

    sockets.forEach((first, index) => {
      const feed = feeds[index] as Source
      let socket = first
      let buf: Buffer | undefined
      let sentAt = 0
      let inFlight = false
      let done = false

      const finish = () => {
        if (done) return
        done = true
        socket.end()
        release()
      }
      const sendNext = () => {
        const now = performance.now()
        if (now >= deadline) stop(deadline)
        if (stopping) return finish()
        const request = feed.next()
        if (request === undefined) {
          exhausted = true
          stop(now)
          return finish()
        }
        sentAt = now
        inFlight = true
        sent += 1
        socket.write(request)
      }
      const onData = (chunk: Buffer) => {
        buf = buf === undefined ? chunk : Buffer.concat([buf, chunk])
        const headEnd = buf.indexOf(CRLFCRLF)
        if (headEnd < 0) return
        const head = buf.toString('latin1', 0, headEnd)
        const end = responseEnd(buf, headEnd, head)
        if (end < 0) return
        buf = end < buf.length ? buf.subarray(end) : undefined
        const now = performance.now()
        inFlight = false
        const status = Number(head.slice(9, 12))
        statuses[status] = (statuses[status] ?? 0) + 1
        if (captureRe && plan.capture && captured.length < plan.capture.limit) {
          const values = [...head.matchAll(captureRe)].map((m) => m[1])
          if (values.length > 0) captured.push(values.join(', '))
          if (captured.length >= plan.capture.limit) stop(now)
        }
        if (sentAt >= warmupEnd && sentAt < windowEnd) latencies.push(now - sentAt)
        if (sentAt >= warmupEnd && now <= windowEnd) {
          completed += 1
          if (status >= 200 && status < 300) ok += 1
        }
        if (/\r\nconnection:[ \t]*close/i.test(head)) {
          socket.removeAllListeners()
          socket.destroy()
          reconnect()
          return
        }
        sendNext()
      }
      const onFailure = () => {
        if (done) return
        if (inFlight) errors += 1
        inFlight = false
        buf = undefined
        if (timedOut) return finish()
        reconnect()
      }
      const attach = () => {
        socket.on('data', onData)
        socket.on('error', onFailure)
        socket.on('close', onFailure)
      }
      const reconnect = () => {
        socket.removeAllListeners()
        if (stopping) {
          done = true
          return release()
        }
        openSocket(plan.host, plan.port).then(
          (fresh) => {
            socket = fresh
            attach()
            sendNext()
          },
          () => {
            errors += 1
            stop(performance.now())
            done = true
            release()
          }
        )
      }
      attach()
      sendNext()
    })
  })

  const cpu = process.threadCpuUsage(cpuStart)
  return {
    windowMs: Math.max(0, windowEnd - warmupEnd),
    completed,
    ok,
    latency: latencySummary(latencies),
    statuses,
    sent,
    errors,
    exhausted,
    timedOut,
    captured,
    cpuMs: (cpu.user + cpu.system) / 1000,
    consumed: queues.map((q) => q.taken()),
    latencies,
  }
}
