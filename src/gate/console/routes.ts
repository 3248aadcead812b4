/**
 * The operator's console as routes of the gate worker: the page and its two files under
 * CONSOLE_PATH, the JSON API under CONSOLE_API, all behind the console's Digest authentication
 * (the gate's realm, members of CONSOLE_GROUP) and hardened alike: never stored by a cache, never
 * framed, nothing loaded from elsewhere, nothing sniffed. Never forwarded to the origin.
 */
import { type Context, Hono, type MiddlewareHandler } from 'hono'
import { CONSOLE_HEADER, type ConsoleApiOptions, consoleApi } from './api.ts'
import { CONSOLE_CSS, CONSOLE_FILES, consoleHtml, consoleScript } from './page.ts'

export const CONSOLE_PATH = '/.digest-gate/console'
export const CONSOLE_API = '/.digest-gate/api'

/** The page: its own script, stylesheet and API, nothing else; no frames, forms or base. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** Everything else the console answers (files, JSON, refusals) may load and be nothing. */
const RESOURCE_CSP = "default-src 'none'; frame-ancestors 'none'"

const HARDENING: Record<string, string> = {
  'Cache-Control': 'no-store',
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
}

/**
 * The console's routes. `auth` is a digestAuth() over the gate's options whose `authorize` admits
 * members of the console's group only (403 for the others).
 */
export function consoleRoutes(auth: MiddlewareHandler, api: ConsoleApiOptions): Hono {
  const app = new Hono()
  // `/x/*` covers `/x` itself: one authentication per request.
  for (const path of [`${CONSOLE_PATH}/*`, `${CONSOLE_API}/*`]) app.use(path, hardened, auth)

  const html = consoleHtml(CONSOLE_PATH)
  const script = consoleScript(CONSOLE_API, CONSOLE_HEADER)
  app.get(CONSOLE_PATH, (c) => file(c, html, 'text/html; charset=utf-8', PAGE_CSP))
  app.get(`${CONSOLE_PATH}/${CONSOLE_FILES.script}`, (c) =>
    file(c, script, 'text/javascript; charset=utf-8')
  )
  app.get(`${CONSOLE_PATH}/${CONSOLE_FILES.style}`, (c) =>
    file(c, CONSOLE_CSS, 'text/css; charset=utf-8')
  )
  app.route(CONSOLE_API, consoleApi(api))
  return app
}

function file(c: Context, body: string, type: string, csp = RESOURCE_CSP): Response {
  return c.body(body, 200, { 'Content-Type': type, 'Content-Security-Policy': csp })
}

/** Whatever the console answers (a 401 or 403 of its authentication too) leaves hardened. */
const hardened: MiddlewareHandler = async (c, next) => {
  await next()
  const headers: Record<string, string> = { ...HARDENING }
  if (!c.res.headers.has('content-security-policy')) {
    headers['Content-Security-Policy'] = RESOURCE_CSP
  }
  try {
    for (const [name, value] of Object.entries(headers)) c.res.headers.set(name, value)
  } catch {
    // Immutable headers: rebuild once.
    const res = new Response(c.res.body, c.res)
    for (const [name, value] of Object.entries(headers)) res.headers.set(name, value)
    c.res = res
  }
}
