/**
 * The demo origin: echoes, as JSON, what reached it through the gate. Tests and people read the
 * identity headers the gate added (every `x-auth-*` header), whether the client's `Authorization`
 * header was (wrongly) forwarded, the SHA-256 of the body (to check bodies pass unchanged), and
 * whether the identity assertion verifies with the gate's published keys (assertion.ts).
 */
import { checkAssertion } from './assertion.ts'
import type { EchoResponse } from './echo.ts'
import { acceptEchoSocket, isWebSocketHandshake } from './websocket.ts'

/** GATE_URL: where the gate publishes its keys (wrangler.toml; `npm start` sets the stack's). */
type DemoEnv = { GATE_URL?: string }

const IDENTITY_PREFIX = 'x-auth-'

async function sha256Hex(data: ArrayBuffer): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data))
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')
}

function identityHeaders(headers: Headers): Record<string, string> {
  const found: Record<string, string> = {}
  for (const [name, value] of headers) {
    if (name.startsWith(IDENTITY_PREFIX)) found[name] = value
  }
  return found
}

export async function describeRequest(request: Request, env: DemoEnv): Promise<EchoResponse> {
  const url = new URL(request.url)
  const body = await request.arrayBuffer()
  return {
    origin: 'digest-gate-demo-origin',
    method: request.method,
    path: url.pathname,
    query: url.search.slice(1),
    authHeaders: identityHeaders(request.headers),
    assertion: await checkAssertion(request.headers.get('x-auth-assertion'), {
      gateUrl: env.GATE_URL,
      audience: url.origin,
    }),
    authorizationReceived: request.headers.has('authorization'),
    acceptEncoding: request.headers.get('accept-encoding'),
    forwardedFor: request.headers.get('x-forwarded-for'),
    destination: request.headers.get('destination'),
    bodyLength: body.byteLength,
    bodySha256: await sha256Hex(body),
  }
}

export default {
  async fetch(request, env) {
    if (isWebSocketHandshake(request)) return acceptEchoSocket(request)
    const description = await describeRequest(request, env)
    return Response.json(description, { headers: { 'cache-control': 'no-store' } })
  },
} satisfies ExportedHandler<DemoEnv>
