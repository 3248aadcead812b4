/**
 * Index of a user's security contexts (one object per realm + user name), so an administrator can
 * revoke every context of a user at once. Touched only on initial authentication and revocation.
 * It also remembers when the user was last revoked, so that a context whose authority call began
 * before that moment is refused when it lands.
 */
import { DurableObject } from 'cloudflare:workers'

/** How long a revocation is remembered: longer than any authority call can take. */
const REVOCATION_MEMORY_SECONDS = 3600

export class UserContexts extends DurableObject {
  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env)
    ctx.storage.sql.exec(
      'CREATE TABLE IF NOT EXISTS handles (handle TEXT PRIMARY KEY, expires INTEGER NOT NULL)'
    )
    ctx.storage.sql.exec('CREATE INDEX IF NOT EXISTS handles_by_expiry ON handles (expires)')
    ctx.storage.sql.exec(
      'CREATE TABLE IF NOT EXISTS revoked (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL)'
    )
  }

  /**
   * Index a new context, unless the user was revoked after `startedAt` (Unix ms, when the gate
   * asked the authority): then false, and the caller establishes nothing.
   */
  add(handle: string, expires: number, now: number, startedAt: number): boolean {
    const sql = this.ctx.storage.sql
    const revokedAt = sql.exec<{ at: number }>('SELECT at FROM revoked').toArray()[0]?.at
    if (revokedAt !== undefined && revokedAt > startedAt) return false
    sql.exec('DELETE FROM handles WHERE expires <= ?', now)
    sql.exec('DELETE FROM revoked WHERE at <= ?', (now - REVOCATION_MEMORY_SECONDS) * 1000)
    sql.exec('INSERT OR REPLACE INTO handles (handle, expires) VALUES (?, ?)', handle, expires)
    return true
  }

  /** Forget a handle that turned out to belong to another user. */
  remove(handle: string): void {
    this.ctx.storage.sql.exec('DELETE FROM handles WHERE handle = ?', handle)
  }

  /** Live handles, and forget them all: the caller revokes each. Logins in flight are refused. */
  takeAll(now: number, nowMs: number): string[] {
    const sql = this.ctx.storage.sql
    const rows = sql
      .exec<{ handle: string }>('SELECT handle FROM handles WHERE expires > ?', now)
      .toArray()
    sql.exec('DELETE FROM handles')
    sql.exec('INSERT OR REPLACE INTO revoked (id, at) VALUES (1, ?)', nowMs)
    return rows.map((r) => r.handle)
  }
}

/** Object name for a user: realm and name, unambiguous. */
export function userContextsName(realm: string, user: string): string {
  return JSON.stringify([realm, user])
}
