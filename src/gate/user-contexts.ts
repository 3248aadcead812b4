/**
 * Index of a user's security contexts (one object per realm + user name), so an administrator can
 * revoke every context of a user at once. Touched only on initial authentication and revocation.
 */
import { DurableObject } from 'cloudflare:workers'

export class UserContexts extends DurableObject {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    ctx.storage.sql.exec(
      'CREATE TABLE IF NOT EXISTS handles (handle TEXT PRIMARY KEY, expires INTEGER NOT NULL)'
    )
    ctx.storage.sql.exec('CREATE INDEX IF NOT EXISTS handles_by_expiry ON handles (expires)')
  }

  add(handle: string, expires: number, now: number): void {
    this.ctx.storage.sql.exec('DELETE FROM handles WHERE expires <= ?', now)
    this.ctx.storage.sql.exec(
      'INSERT OR REPLACE INTO handles (handle, expires) VALUES (?, ?)',
      handle,
      expires
    )
  }

  /** Live handles, and forget them all: the caller revokes each. */
  takeAll(now: number): string[] {
    const rows = this.ctx.storage.sql
      .exec<{ handle: string }>('SELECT handle FROM handles WHERE expires > ?', now)
      .toArray()
    this.ctx.storage.sql.exec('DELETE FROM handles')
    return rows.map((r) => r.handle)
  }
}

/** Object name for a user: realm and name, unambiguous. */
export function userContextsName(realm: string, user: string): string {
  return JSON.stringify([realm, user])
}
