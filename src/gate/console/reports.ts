/**
 * What the gate tells the console's index (index-object.ts) and how it finds the index: plain data
 * over RPC, never a session key, nonce, nc state or Authorization value. Everything a client chose
 * (a user name as sent, a user agent, a path) is clipped here before it is kept anywhere.
 */
import type { BrakeReason } from '../brake-policy.ts'

/** A session as the console lists it. Times are Unix seconds. */
export interface SessionReport {
  /** The context's handle: the public id the opaque names. */
  handle: string
  /** The principal's name (as the authority returned it). */
  user: string
  groups: string[]
  algorithm: string
  created: number
  lastUsed: number
  expires: number
  idleTimeout: number
  /**
   * Requests verified: on `established` the session's first (1, or 0 for a stale answer); on
   * `used` those since the previous report.
   */
  requests: number
}

/** Where the session's first request came from: reported once, when it is established. */
export interface FirstSeen {
  address?: string
  userAgent?: string
}

/** A brake that began (or went on) braking: on a client bucket, a user, or both. */
export interface BrakeReport {
  /** The client bucket: an IPv4 address, an IPv6 /64, with the calling Worker's zone if any. */
  address?: string
  /** The user name as the attempts sent it (untrusted). */
  user?: string
  reason: BrakeReason
  /** Unix seconds: when it stops braking unless more attempts are counted. */
  until: number
  /** Unix seconds: the earliest the next attempt is admitted. */
  nextAttempt: number
}

/** One refused request, for the ring of the latest refusals. */
export interface RefusalReport {
  /** Unix milliseconds. */
  at: number
  /** The user name as the client sent it: untrusted, may be anything (a password typed there). */
  user: string
  address: string
  method: string
  path: string
  reason: string
  status: number
}

/** The index's methods the gate's objects and isolates call (answers are ignored). */
export interface ConsoleReports {
  established(session: SessionReport, first: FirstSeen, now: number): unknown
  used(session: SessionReport, now: number): unknown
  over(handle: string, created: number, why: 'ended' | 'revoked', now: number): unknown
  throttled(brake: BrakeReport, now: number): unknown
  refused(rows: RefusalReport[], now: number): unknown
}

/** Lengths kept of what clients chose. */
export const CLIP = {
  user: 64,
  address: 64,
  userAgent: 256,
  path: 256,
  reason: 64,
  method: 16,
  group: 64,
  groups: 32,
} as const

/** Control and bidirectional-override characters: they could make one name look like another. */
const INVISIBLE = /[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu

/** At most `max` characters (code points) of `s`, with invisible controls made visible. */
export function clip(s: string, max: number): string {
  const chars = Array.from(s.length > max * 2 ? s.slice(0, max * 2) : s)
  return chars.slice(0, max).join('').replace(INVISIBLE, '\ufffd')
}

/** The binding of the index objects (wrangler.toml) and the variable that turns the console on. */
interface ConsoleEnv {
  CONSOLE_INDEX?: { getByName(name: string): ConsoleReports }
  CONSOLE_GROUP?: unknown
  REALM?: unknown
}

/**
 * The index of this gate's realm, as a reporter sees it; undefined when the console is off
 * (CONSOLE_GROUP unset or blank) or not bound. The objects read their worker's env: they report
 * only where the worker serves a console. Looked up per report, never kept across requests.
 */
export function consoleIndexOf(env: unknown): (() => ConsoleReports) | undefined {
  const e = (env ?? {}) as ConsoleEnv
  const on = typeof e.CONSOLE_GROUP === 'string' && e.CONSOLE_GROUP.trim() !== ''
  const realm = typeof e.REALM === 'string' ? e.REALM.trim() : ''
  const ns = e.CONSOLE_INDEX
  if (!on || realm === '' || typeof ns?.getByName !== 'function') return undefined
  return () => ns.getByName(consoleIndexName(realm))
}

/** One index object per realm. */
export function consoleIndexName(realm: string): string {
  return `realm:${realm}`
}
