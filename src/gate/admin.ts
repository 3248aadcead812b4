/**
 * The admin endpoint (off unless ADMIN_TOKEN is set): revoke one security context, or every
 * context of a user (DeleteSecurityContext). Guarded by its own bearer token.
 */
import { Hono } from 'hono'
import { bearerAuth } from 'hono/bearer-auth'
import type { ContextPolicy, ContextStore } from './context-types.ts'
import { type LogLevel, writeLog } from './decision-log.ts'

export const ADMIN_PREFIX = '/.digest-gate/admin'

export function adminRoutes(
  token: string,
  contexts: ContextStore,
  policy: ContextPolicy,
  logLevel: LogLevel
): Hono {
  const admin = new Hono()
  admin.use('*', bearerAuth({ token }))
  admin.post('/contexts/:handle/revoke', async (c) => {
    const handle = c.req.param('handle')
    if (!/^[A-Za-z0-9_-]{22}$/.test(handle)) {
      return c.json({ error: 'invalid_request', message: 'not a context handle' }, 400)
    }
    const revoked = await contexts.revoke(handle, Math.floor(Date.now() / 1000), policy)
    writeLog(logLevel, 'info', { event: 'digest-gate.admin', action: 'revoke_context', revoked })
    return c.json({ revoked: revoked ? 1 : 0 })
  })
  admin.post('/users/:realm/:name/revoke', async (c) => {
    const realm = c.req.param('realm')
    const name = c.req.param('name')
    const revoked = await contexts.revokeUser(realm, name, Math.floor(Date.now() / 1000), policy)
    writeLog(logLevel, 'info', {
      event: 'digest-gate.admin',
      action: 'revoke_user',
      user: name,
      realm,
      revoked,
    })
    return c.json({ revoked })
  })
  return admin
}
