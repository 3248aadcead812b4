/**
 * Brakes against password guessing and authority floods, one object per client IP.
 * Counts only real mismatches (a wrong response), never missing headers, stale nonces or
 * out-of-window nc — counting those locked real users out in nginx-digest.
 */
import { DurableObject } from 'cloudflare:workers'

export interface BrakePolicy {
  /** Failures of one user from one client within `windowSeconds` before it is braked. */
  userFailures: number
  /** Failures of all users from one client within `windowSeconds`. */
  clientFailures: number
  windowSeconds: number
  /** Initial authentications (authority calls) one client may start per minute. */
  authorityCallsPerMinute: number
}

export const DEFAULT_BRAKE_POLICY: BrakePolicy = {
  userFailures: 10,
  clientFailures: 50,
  windowSeconds: 300,
  authorityCallsPerMinute: 60,
}

export type BrakeVerdict = { ok: true } | { ok: false; retryAfter: number; reason: string }

/** Key of the per-client counter row in the failures table. */
const ANY_USER = '\u0000*'

export class Brake extends DurableObject {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS failures (
      user TEXT PRIMARY KEY, count INTEGER NOT NULL, since INTEGER NOT NULL)`)
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS calls (
      id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL, since INTEGER NOT NULL)`)
  }

  /** May this client start an authority call for this user now? Consumes one call if so. */
  admit(user: string, now: number, policy: BrakePolicy): BrakeVerdict {
    const blocked = this.blocked(user, now, policy)
    if (blocked) return blocked
    const row = this.ctx.storage.sql
      .exec<{ count: number; since: number }>('SELECT count, since FROM calls WHERE id = 1')
      .toArray()[0]
    const fresh = !row || now - row.since >= 60
    const count = fresh ? 1 : row.count + 1
    if (count > policy.authorityCallsPerMinute) {
      return {
        ok: false,
        retryAfter: Math.max(1, 60 - (now - (row?.since ?? now))),
        reason: 'authority_rate',
      }
    }
    this.ctx.storage.sql.exec(
      'INSERT OR REPLACE INTO calls (id, count, since) VALUES (1, ?, ?)',
      count,
      fresh ? now : (row?.since ?? now)
    )
    this.scheduleSweep(now, policy)
    return { ok: true }
  }

  recordFailure(user: string, now: number, policy: BrakePolicy): void {
    for (const key of [user, ANY_USER]) {
      const row = this.failures(key)
      const fresh = !row || now - row.since >= policy.windowSeconds
      this.ctx.storage.sql.exec(
        'INSERT OR REPLACE INTO failures (user, count, since) VALUES (?, ?, ?)',
        key,
        fresh ? 1 : row.count + 1,
        fresh ? now : row.since
      )
    }
    this.scheduleSweep(now, policy)
  }

  override async alarm(): Promise<void> {
    await this.ctx.storage.deleteAll()
  }

  private blocked(user: string, now: number, policy: BrakePolicy): BrakeVerdict | undefined {
    for (const [key, limit] of [
      [user, policy.userFailures],
      [ANY_USER, policy.clientFailures],
    ] as const) {
      const row = this.failures(key)
      if (row && now - row.since < policy.windowSeconds && row.count >= limit) {
        return {
          ok: false,
          retryAfter: Math.max(1, row.since + policy.windowSeconds - now),
          reason: key === ANY_USER ? 'client_failures' : 'user_failures',
        }
      }
    }
    return undefined
  }

  private failures(key: string): { count: number; since: number } | undefined {
    return this.ctx.storage.sql
      .exec<{ count: number; since: number }>(
        'SELECT count, since FROM failures WHERE user = ?',
        key
      )
      .toArray()[0]
  }

  /** All counters are short-lived: wipe the object once the longest window has passed. */
  private scheduleSweep(now: number, policy: BrakePolicy): void {
    void this.ctx.storage.setAlarm((now + Math.max(policy.windowSeconds, 60) + 1) * 1000)
  }
}
