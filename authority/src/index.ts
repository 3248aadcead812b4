/**
 * digest-gate-authority: the reference authority (the domain controller of the Microsoft Digest
 * model). Protocol: docs/authority-protocol.md.
 *
 *   POST /v1/verify   verification (gate token as bearer)
 *   GET  /metrics     Prometheus counters (per isolate); off unless METRICS_TOKEN is set, then
 *                     with that token as bearer
 *   GET  /healthz     liveness and configuration check
 *
 * Also reachable over a service binding: `.fetch()` on the default export, or RPC `verify()` on
 * the AuthorityEntrypoint named entrypoint.
 */
import { WorkerEntrypoint } from 'cloudflare:workers'
import {
  type AuthorityRpc,
  MAX_REQUEST_BYTES,
  VERIFY_PATH,
  type VerifyRpcResult,
} from '../../src/authority-protocol/v1.ts'
import type { AuthorityEnv } from './env.ts'
import { bearerMatches, bearerToken, checkRpcBody, jsonResponse, readJsonBody } from './http.ts'
import { renderMetrics } from './metrics.ts'
import { runVerification } from './verify.ts'

export type { AuthorityEnv } from './env.ts'

async function handle(request: Request, env: AuthorityEnv): Promise<Response> {
  const { pathname } = new URL(request.url)
  const route = ROUTES[pathname]
  if (route === undefined || route.enabled?.(env) === false) return notFound(pathname)
  if (request.method !== route.method) {
    return jsonResponse(
      405,
      { error: 'method_not_allowed', message: `use ${route.method}` },
      { Allow: route.method }
    )
  }
  return route.run(request, env)
}

function notFound(pathname: string): Response {
  return jsonResponse(404, { error: 'not_found', message: `no route ${pathname}` })
}

interface Route {
  method: 'GET' | 'POST'
  /** A route switched off by configuration answers 404, like one that does not exist. */
  enabled?(env: AuthorityEnv): boolean
  run(request: Request, env: AuthorityEnv): Promise<Response> | Response
}

const ROUTES: Record<string, Route | undefined> = {
  [VERIFY_PATH]: {
    method: 'POST',
    async run(request, env) {
      const outcome = await runVerification(env, bearerToken(request), () =>
        readJsonBody(request, MAX_REQUEST_BYTES)
      )
      const headers: HeadersInit | undefined =
        outcome.status === 401
          ? { 'WWW-Authenticate': 'Bearer realm="digest-gate-authority"' }
          : undefined
      return jsonResponse(outcome.status, outcome.body, headers)
    },
  },
  '/metrics': {
    method: 'GET',
    enabled: (env) => (env.METRICS_TOKEN ?? '') !== '',
    async run(request, env) {
      if (!(await bearerMatches(request, env.METRICS_TOKEN as string))) {
        console.warn(
          JSON.stringify({
            event: 'authority.metrics_refused',
            detail: bearerToken(request) === undefined ? 'no_token' : 'bad_token',
          })
        )
        return jsonResponse(
          401,
          { error: 'unauthorized', message: 'GET /metrics needs the METRICS_TOKEN as bearer' },
          { 'WWW-Authenticate': 'Bearer realm="digest-gate-authority metrics"' }
        )
      }
      return new Response(renderMetrics(), {
        headers: {
          'Content-Type': 'text/plain; version=0.0.4; charset=utf-8',
          'Cache-Control': 'no-store',
        },
      })
    },
  },
  '/healthz': {
    method: 'GET',
    run(_request, env) {
      const configured = (env.AUTHORITY_SECRET ?? '').length > 0
      return configured
        ? jsonResponse(200, { status: 'ok' })
        : jsonResponse(503, { status: 'misconfigured', message: 'AUTHORITY_SECRET is not set' })
    },
  },
}

/** Named entrypoint for service bindings: RPC `verify()` and `fetch()`. */
export class AuthorityEntrypoint extends WorkerEntrypoint<AuthorityEnv> implements AuthorityRpc {
  async verify(token: string, request: unknown): Promise<VerifyRpcResult> {
    const outcome = await runVerification(
      this.env,
      typeof token === 'string' ? token : undefined,
      async () => checkRpcBody(request, MAX_REQUEST_BYTES)
    )
    if (outcome.status === 200) return outcome.body
    return { ...outcome.body, status: outcome.status }
  }

  override fetch(request: Request): Promise<Response> {
    return handle(request, this.env)
  }
}

export default {
  fetch: (request, env) => handle(request, env),
} satisfies ExportedHandler<AuthorityEnv>
