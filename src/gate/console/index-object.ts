/**
 * The console's index: one Durable Object per realm holding what the operator's console lists —
 * the active sessions, the brakes braking now, and the latest refusals (a ring of MAX_REFUSALS).
 * Written by reports (reports.ts) the security contexts, brake objects and the gate's isolates send
 * off their requests' paths; read by the console's API. It decides nothing about access: losing a
 * report only makes the list stale, and what has run out by the clock is never listed.
 */
import { DurableObject } from 'cloudflare:workers'
import type { BrakeReason } from '../brake-policy.ts'
import {
  type BrakeReport,
  CLIP,
  type ConsoleReports,
  clip,
  type FirstSeen,
  type RefusalReport,
  type SessionReport,
} from './reports.ts'

/** The ring of the latest refusals holds this many. */
export const MAX_REFUSALS = 200

/** Sessions listed at most: the most recently used. */
export const MAX_LISTED_SESSIONS = 1000

/** Brakes kept at most: under a spread-out attack, those ending first go first. */
const MAX_BRAKES = 1000

/**
 * A revoked handle stays known this long, so that a report of its start that arrives late does
 * not list it again (a revoked handle is refused for longer: a nonce lifetime and a grace).
 */
const REVOKED_MEMORY_SECONDS = 120

/** What has run out is deleted at most this often (it is never listed anyway). */
const PRUNE_SECONDS = 60

/** A session as the console's API answers it. Times are Unix seconds. */
export interface ListedSession extends SessionReport {
  address: string | null
  userAgent: string | null
}

/** A brake braking now. */
export interface ListedBrake extends BrakeReport {
  /** When this throttle began (Unix seconds). */
  since: number
}

type Row = Record<string, SqlStorageValue>

export class ConsoleIndex extends DurableObject implements ConsoleReports {
  private prunedAt = 0

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env)
    const sql = ctx.storage.sql
    sql.exec(`CREATE TABLE IF NOT EXISTS sessions (
      handle TEXT PRIMARY KEY, user TEXT NOT NULL, groups TEXT NOT NULL, algorithm TEXT NOT NULL,
      created INTEGER NOT NULL, last_used INTEGER NOT NULL, expires INTEGER NOT NULL,
      idle_timeout INTEGER NOT NULL, requests INTEGER NOT NULL, address TEXT, user_agent TEXT)`)
    sql.exec('CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user, last_used)')
    sql.exec('CREATE TABLE IF NOT EXISTS revoked (handle TEXT PRIMARY KEY, until INTEGER NOT NULL)')
    sql.exec(`CREATE TABLE IF NOT EXISTS brakes (
      id TEXT PRIMARY KEY, address TEXT, user TEXT, reason TEXT NOT NULL, since INTEGER NOT NULL,
      until INTEGER NOT NULL, next_attempt INTEGER NOT NULL)`)
    sql.exec(`CREATE TABLE IF NOT EXISTS refusals (
      id INTEGER PRIMARY KEY, at INTEGER NOT NULL, user TEXT NOT NULL, address TEXT NOT NULL,
      method TEXT NOT NULL, path TEXT NOT NULL, reason TEXT NOT NULL, status INTEGER NOT NULL)`)
  }

  // ---- Reports.

  /**
   * A session began. Its handle may have carried an earlier session (which ran out): that one is
   * replaced. The same session established again (another algorithm) keeps what was first seen.
   */
  established(session: SessionReport, first: FirstSeen, now: number): void {
    this.prune(now)
    const sql = this.ctx.storage.sql
    const revoked = sql
      .exec('SELECT 1 FROM revoked WHERE handle = ? AND until > ?', session.handle, now)
      .toArray()
    if (revoked.length > 0) return
    sql.exec(
      `INSERT INTO sessions (handle, user, groups, algorithm, created, last_used, expires,
         idle_timeout, requests, address, user_agent)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (handle) DO UPDATE SET
         requests = CASE WHEN sessions.created = excluded.created
           THEN sessions.requests + excluded.requests ELSE excluded.requests END,
         address = CASE WHEN sessions.created = excluded.created
           THEN sessions.address ELSE excluded.address END,
         user_agent = CASE WHEN sessions.created = excluded.created
           THEN sessions.user_agent ELSE excluded.user_agent END,
         user = excluded.user, groups = excluded.groups, algorithm = excluded.algorithm,
         created = excluded.created, last_used = excluded.last_used,
         expires = excluded.expires, idle_timeout = excluded.idle_timeout`,
      session.handle,
      clip(session.user, CLIP.user),
      groupsText(session.groups),
      clip(session.algorithm, CLIP.method),
      session.created,
      session.lastUsed,
      session.expires,
      session.idleTimeout,
      session.requests,
      first.address === undefined ? null : clip(first.address, CLIP.address),
      first.userAgent === undefined ? null : clip(first.userAgent, CLIP.userAgent)
    )
  }

  /** Last use recorded (or groups revalidated): only for the session it names, if still listed. */
  used(session: SessionReport, _now: number): void {
    this.ctx.storage.sql.exec(
      `UPDATE sessions SET last_used = MAX(last_used, ?), groups = ?, requests = requests + ?
       WHERE handle = ? AND created = ?`,
      session.lastUsed,
      groupsText(session.groups),
      session.requests,
      session.handle,
      session.created
    )
  }

  /**
   * A session ended or was revoked. An end removes only the session it names (not a later one on
   * the same handle); a revocation removes the handle and keeps it known for a while.
   */
  over(handle: string, created: number, why: 'ended' | 'revoked', now: number): void {
    const sql = this.ctx.storage.sql
    if (why === 'ended') {
      sql.exec('DELETE FROM sessions WHERE handle = ? AND created <= ?', handle, created)
      return
    }
    this.forget(handle, now)
  }

  /** A brake began braking, or its end moved later. */
  throttled(brake: BrakeReport, now: number): void {
    this.prune(now)
    const address = brake.address === undefined ? null : clip(brake.address, CLIP.address)
    const user = brake.user === undefined ? null : clip(brake.user, CLIP.user)
    const reason = clip(brake.reason, CLIP.reason)
    const sql = this.ctx.storage.sql
    sql.exec(
      `INSERT INTO brakes (id, address, user, reason, since, until, next_attempt)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET
         since = CASE WHEN brakes.until <= excluded.since THEN excluded.since ELSE brakes.since END,
         until = MAX(brakes.until, excluded.until), next_attempt = excluded.next_attempt`,
      JSON.stringify([address, user, reason]),
      address,
      user,
      reason,
      now,
      brake.until,
      brake.nextAttempt
    )
    sql.exec(
      'DELETE FROM brakes WHERE id NOT IN (SELECT id FROM brakes ORDER BY until DESC LIMIT ?)',
      MAX_BRAKES
    )
  }

  /** A batch of refusals from one isolate; the ring keeps the latest MAX_REFUSALS. */
  refused(rows: RefusalReport[], now: number): void {
    this.prune(now)
    const sql = this.ctx.storage.sql
    for (const r of rows.slice(-MAX_REFUSALS)) {
      sql.exec(
        'INSERT INTO refusals (at, user, address, method, path, reason, status) VALUES (?, ?, ?, ?, ?, ?, ?)',
        Number(r.at) || 0,
        clip(String(r.user), CLIP.user),
        clip(String(r.address), CLIP.address),
        clip(String(r.method), CLIP.method),
        clip(String(r.path), CLIP.path),
        clip(String(r.reason), CLIP.reason),
        Number(r.status) || 0
      )
    }
    sql.exec('DELETE FROM refusals WHERE id <= (SELECT MAX(id) FROM refusals) - ?', MAX_REFUSALS)
  }

  // ---- The console's actions.

  /** The console revoked this handle: unlisted at once, and kept known for a while. */
  forget(handle: string, now: number): void {
    const sql = this.ctx.storage.sql
    sql.exec('DELETE FROM sessions WHERE handle = ?', handle)
    sql.exec(
      'INSERT OR REPLACE INTO revoked (handle, until) VALUES (?, ?)',
      handle,
      now + REVOKED_MEMORY_SECONDS
    )
  }

  /** The console revoked every session of a user. */
  forgetUser(user: string, now: number): void {
    const sql = this.ctx.storage.sql
    sql.exec(
      'INSERT OR REPLACE INTO revoked (handle, until) SELECT handle, ? FROM sessions WHERE user = ?',
      now + REVOKED_MEMORY_SECONDS,
      user
    )
    sql.exec('DELETE FROM sessions WHERE user = ?', user)
  }

  // ---- Reading.

  /**
   * Sessions that have not run out by `now`: the MAX_LISTED_SESSIONS most recently used, by user,
   * the most recently used first within each.
   */
  sessions(now: number): { sessions: ListedSession[]; total: number } {
    const sql = this.ctx.storage.sql
    const live = 'expires > ? AND last_used + idle_timeout > ?'
    const total = sql
      .exec<{ n: number }>(`SELECT COUNT(*) AS n FROM sessions WHERE ${live}`, now, now)
      .one().n
    const rows = sql
      .exec<Row>(
        `SELECT * FROM (SELECT * FROM sessions WHERE ${live} ORDER BY last_used DESC LIMIT ?)
         ORDER BY user, last_used DESC`,
        now,
        now,
        MAX_LISTED_SESSIONS
      )
      .toArray()
    return { sessions: rows.map(listedSession), total }
  }

  /** Brakes braking at `now`, those that end last first. */
  brakes(now: number): ListedBrake[] {
    return this.ctx.storage.sql
      .exec<Row>('SELECT * FROM brakes WHERE until > ? ORDER BY until DESC', now)
      .toArray()
      .map((r) => ({
        address: r.address === null ? undefined : String(r.address),
        user: r.user === null ? undefined : String(r.user),
        reason: String(r.reason) as BrakeReason,
        since: Number(r.since),
        until: Number(r.until),
        nextAttempt: Number(r.next_attempt),
      }))
  }

  /** The latest refusals, newest first. */
  refusals(): RefusalReport[] {
    return this.ctx.storage.sql
      .exec<Row>(
        'SELECT at, user, address, method, path, reason, status FROM refusals ORDER BY id DESC LIMIT ?',
        MAX_REFUSALS
      )
      .toArray()
      .map((r) => ({
        at: Number(r.at),
        user: String(r.user),
        address: String(r.address),
        method: String(r.method),
        path: String(r.path),
        reason: String(r.reason),
        status: Number(r.status),
      }))
  }

  /** Delete what has run out: sessions, revoked handles, brakes (at most every PRUNE_SECONDS). */
  private prune(now: number): void {
    if (now - this.prunedAt < PRUNE_SECONDS) return
    this.prunedAt = now
    const sql = this.ctx.storage.sql
    sql.exec('DELETE FROM sessions WHERE expires <= ? OR last_used + idle_timeout <= ?', now, now)
    sql.exec('DELETE FROM revoked WHERE until <= ?', now)
    sql.exec('DELETE FROM brakes WHERE until <= ?', now)
  }
}

function groupsText(groups: readonly string[]): string {
  return JSON.stringify(groups.slice(0, CLIP.groups).map((g) => clip(String(g), CLIP.group)))
}

function listedSession(r: Row): ListedSession {
  return {
    handle: String(r.handle),
    user: String(r.user),
    groups: JSON.parse(String(r.groups)) as string[],
    algorithm: String(r.algorithm),
    created: Number(r.created),
    lastUsed: Number(r.last_used),
    expires: Number(r.expires),
    idleTimeout: Number(r.idle_timeout),
    requests: Number(r.requests),
    address: r.address === null ? null : String(r.address),
    userAgent: r.user_agent === null ? null : String(r.user_agent),
  }
}
