/**
 * The console's JSON API, mounted under CONSOLE_API behind the console's Digest authentication
 * (routes.ts): the index's lists, and revocation of a session or of every session of a user.
 * What it answers never holds a session key, nonce, nc state or Authorization value.
 */
import { type Context, Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { ContextPolicy, ContextStore } from '../context-types.ts'
import { type LogLevel, writeLog } from '../decision-log.ts'
import type { ConsoleIndex } from './index-object.ts'

/**
 * State-changing calls must carry this header with the value `1`: a cross-site form cannot set
 * a header, and a cross-site script that sets one needs a CORS preflight, which the gate refuses.
 */
export const CONSOLE_HEADER = 'X-Digest-Gate-Console'

/** A context handle: 16 random bytes, base64url (src/digest/tokens.ts). */
const HANDLE = /^[A-Za-z0-9_-]{22}$/

/** User names are the authority's; this bounds what a request can make the gate look up. */
const MAX_USER_NAME = 256

export interface ConsoleApiOptions {
  /** The realm's index object, looked up per request. */
  index: () => DurableObjectStub<ConsoleIndex>
  contexts: ContextStore
  policy: ContextPolicy
  realm: string
  logLevel: LogLevel
}

export function consoleApi(o: ConsoleApiOptions): Hono {
  const api = new Hono()
  const now = () => Math.floor(Date.now() / 1000)
  /** Who is using the console (set by its Digest authentication). */
  const viewer = (c: Context) => c.get('digestAuth')?.principal.name

  // Only GET and HEAD change nothing; anything else must prove it came from the console's page.
  api.use('*', async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next()
    const site = c.req.header('sec-fetch-site')
    if (c.req.header(CONSOLE_HEADER) !== '1' || (site !== undefined && site !== 'same-origin')) {
      writeLog(o.logLevel, 'denial', {
        event: 'digest-gate.console',
        action: 'refused',
        reason: 'missing_console_header',
        by: viewer(c),
      })
      return json(
        c,
        {
          error: 'forbidden',
          message: `state-changing calls need the header ${CONSOLE_HEADER}: 1 (same origin)`,
        },
        403
      )
    }
    return next()
  })

  api.get('/sessions', async (c) => {
    const t = now()
    const listed = await o.index().sessions(t)
    return json(c, { now: t, realm: o.realm, viewer: viewer(c), ...listed })
  })
  api.get('/brakes', async (c) => {
    const t = now()
    return json(c, { now: t, brakes: await o.index().brakes(t) })
  })
  api.get('/refusals', async (c) => json(c, { now: now(), refusals: await o.index().refusals() }))

  api.post('/sessions/:handle/revoke', async (c) => {
    const handle = c.req.param('handle')
    if (!HANDLE.test(handle)) {
      return json(c, { error: 'invalid_request', message: 'not a context handle' }, 400)
    }
    const t = now()
    const revoked = await o.contexts.revoke(handle, t, o.policy)
    // Unlisted now; the context reports it too, so a failure here only delays that.
    await o.index().forget(handle, t).catch(reportFailed)
    writeLog(o.logLevel, 'info', {
      event: 'digest-gate.console',
      action: 'revoke_context',
      by: viewer(c),
      revoked,
    })
    return json(c, { revoked: revoked ? 1 : 0 })
  })

  api.post('/users/:name/revoke', async (c) => {
    // Percent-decoded by the router; a malformed escape stays as sent (and matches nobody).
    const name = c.req.param('name')
    if (name === '' || name.length > MAX_USER_NAME) {
      return json(c, { error: 'invalid_request', message: 'not a user name' }, 400)
    }
    const t = now()
    const revoked = await o.contexts.revokeUser(o.realm, name, t, o.policy)
    await o.index().forgetUser(name, t).catch(reportFailed)
    writeLog(o.logLevel, 'info', {
      event: 'digest-gate.console',
      action: 'revoke_user',
      by: viewer(c),
      user: name,
      revoked,
    })
    return json(c, { revoked })
  })

  // The index or a context could not be reached: the console's state, not the request, is at fault.
  api.onError((err, c) => {
    if (err instanceof HTTPException) return err.getResponse()
    writeLog(o.logLevel, 'fault', {
      event: 'digest-gate.console',
      action: 'failed',
      message: String(err),
    })
    c.header('Retry-After', '5')
    return json(
      c,
      { error: 'unavailable', message: 'the console could not reach its state: retry' },
      503
    )
  })

  return api
}

function reportFailed(err: unknown): void {
  console.warn(JSON.stringify({ event: 'digest-gate.console_report_failed', message: String(err) }))
}

/**
 * JSON with `<`, `>` and `&` escaped (\u003c …): a string a client chose never appears in a
 * response as markup, even to a reader that ignores the content type.
 */
function json(c: Context, data: unknown, status: ContentfulStatusCode = 200): Response {
  const text = JSON.stringify(data).replace(
    /[<>&\u2028\u2029]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`
  )
  return c.body(text, status, { 'Content-Type': 'application/json; charset=utf-8' })
}
