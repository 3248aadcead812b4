/**
 * The latest refusals, for the console: each refusal the gate decides becomes a row (the user
 * name as the client sent it, clipped), buffered in the isolate and written to the index off the
 * request's path, at most one write per WRITE_INTERVAL_MS per isolate, so a flood of refusals
 * never becomes a flood of storage writes.
 */
import type { Context } from 'hono'
import { parseAuthorization } from '../../digest/header.ts'
import type { DecisionLog } from '../decision-log.ts'
import { CLIP, clip, type RefusalReport } from './reports.ts'

/** One isolate writes its refusals at most this often. */
export const WRITE_INTERVAL_MS = 1000

/** Rows an isolate holds between writes; beyond, the oldest go (the ring keeps this many anyway). */
export const MAX_PENDING = 200

/**
 * Writes a drain makes at most before it lets the next refusal start another: one request's
 * waitUntil is kept for a few seconds, never for a whole flood.
 */
const MAX_WRITES_PER_DRAIN = 10

/** A drain not finished after this long was cut short with its request: the next row restarts. */
const DRAIN_STALE_MS = 30_000

/**
 * The refusal a decision records, or undefined for what is no refusal of anyone: a challenge to a
 * request without (Digest) credentials, and a stale nonce (both the ordinary start of a login).
 */
export function refusalOf(
  entry: DecisionLog,
  c: Context,
  address: string
): RefusalReport | undefined {
  if (entry.status < 400 || entry.outcome === 'challenge' || entry.outcome === 'stale') {
    return undefined
  }
  return {
    at: Date.now(),
    user: clip(userAsSent(c.req.header('authorization')), CLIP.user),
    address: clip(address, CLIP.address),
    method: clip(entry.method, CLIP.method),
    path: clip(entry.path, CLIP.path),
    reason: clip(entry.reason ?? entry.outcome, CLIP.reason),
    status: entry.status,
  }
}

/** The `username` (or `username*`) of a Digest header as sent; '' when there is none. */
function userAsSent(authorization: string | undefined): string {
  if (!authorization || !/^\s*digest\s/i.test(authorization)) return ''
  try {
    return parseAuthorization(authorization).username
  } catch {
    // Malformed: what looks like the name, for the operator to recognise.
    return /username\*?\s*=\s*"?([^",]*)/i.exec(authorization)?.[1] ?? ''
  }
}

/**
 * An isolate's buffer of refusals and its writes. The first row after a quiet second is written at
 * once; the rows that follow within the interval wait for one write at its end. The writes run in
 * the waitUntil of the request that started the drain, a few at most: rows still waiting after a
 * drain's last write go with the next refusal's.
 */
export class RefusalBuffer {
  private pending: RefusalReport[] = []
  private lastWrite = Number.NEGATIVE_INFINITY
  private drainingSince: number | undefined
  private readonly write: (rows: RefusalReport[]) => Promise<unknown>
  private readonly now: () => number
  private readonly sleep: (ms: number) => Promise<void>

  constructor(
    write: (rows: RefusalReport[]) => Promise<unknown>,
    now: () => number = () => Date.now(),
    sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms))
  ) {
    this.write = write
    this.now = now
    this.sleep = sleep
  }

  add(row: RefusalReport, waitUntil: (p: Promise<unknown>) => void): void {
    this.pending.push(row)
    if (this.pending.length > MAX_PENDING) this.pending.splice(0, this.pending.length - MAX_PENDING)
    const now = this.now()
    if (this.drainingSince !== undefined && now - this.drainingSince < DRAIN_STALE_MS) return
    this.drainingSince = now
    waitUntil(this.drain())
  }

  /** Rows waiting for the next write. */
  get waiting(): number {
    return this.pending.length
  }

  private async drain(): Promise<void> {
    const mine = this.drainingSince
    try {
      for (let i = 0; i < MAX_WRITES_PER_DRAIN && this.pending.length > 0; i++) {
        const wait = this.lastWrite + WRITE_INTERVAL_MS - this.now()
        if (wait > 0) await this.sleep(wait)
        const rows = this.pending
        this.pending = []
        this.lastWrite = this.now()
        await this.write(rows).catch((err: unknown) => {
          console.warn(
            JSON.stringify({ event: 'digest-gate.console_report_failed', message: String(err) })
          )
        })
      }
    } finally {
      if (this.drainingSince === mine) this.drainingSince = undefined
    }
  }
}

/**
 * A decision log that also records refusals: `log` gets every entry as before; a refusal becomes
 * a row of `buffer`, written in the background of its request.
 */
export function recordingRefusals(
  log: (entry: DecisionLog, c: Context) => void,
  clientIp: (c: Context) => string,
  buffer: RefusalBuffer
): (entry: DecisionLog, c: Context) => void {
  return (entry, c) => {
    log(entry, c)
    if (entry.status < 400) return
    const row = refusalOf(entry, c, clientIp(c))
    if (row) buffer.add(row, (p) => waitUntil(c, p))
  }
}

function waitUntil(c: Context, p: Promise<unknown>): void {
  try {
    c.executionCtx.waitUntil(p)
  } catch {
    // No execution context (app.request in tests): the promise runs on its own.
  }
}
