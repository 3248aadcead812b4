/**
 * The gate's side of authority protocol v1 (docs/authority-protocol.md): one POST per initial
 * authentication, by URL or through a service binding. Never retried (a verification is not
 * idempotent for the brakes), bounded by a timeout; any fault is reported, never thrown.
 */
import type { VerifyRequest, VerifyResponse } from '../authority-protocol/v1.ts'
import { HEX_DIGEST_LENGTH, hashOf, parseAlgorithmName } from '../digest/algorithms.ts'
import { readBodyUpTo } from '../digest/bounded-body.ts'
import { isTimeout } from './timeout.ts'

export type AuthorityAnswer = VerifyResponse | { result: 'fault'; reason: string }

export interface AuthorityClient {
  verify(request: VerifyRequest): Promise<AuthorityAnswer>
  /**
   * Is the authority there, and does it accept this gate? For a readiness check: cheap, verifies
   * nobody. Optional: an authority without it counts as ready.
   */
  probe?(): Promise<Readiness>
}

export type Readiness = { kind: 'ready' } | { kind: 'unready'; reason: string }

export interface HttpAuthorityOptions {
  url: string
  /** Gate token bound to this gate's server identity. */
  token: string
  timeoutMs?: number
  /** A service binding (or any fetcher) to send the request through instead of the network. */
  fetcher?: { fetch(request: Request): Promise<Response> }
}

const MAX_ANSWER_BYTES = 64 * 1024

export function httpAuthority(options: HttpAuthorityOptions): AuthorityClient {
  const timeoutMs = options.timeoutMs ?? 5000
  const fetcher = options.fetcher
  const send = fetcher ? (req: Request) => fetcher.fetch(req) : (req: Request) => fetch(req)
  const post = (body: string) =>
    send(
      new Request(options.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
        // workerd follows a redirect to any host with every header, the token too, and would
        // take the target's answer as the authority's: a redirect is a fault (status_3xx).
        redirect: 'manual',
      })
    )
  return {
    async verify(request) {
      let res: Response
      try {
        res = await post(JSON.stringify(request))
      } catch (err) {
        return { result: 'fault', reason: isTimeout(err) ? 'timeout' : 'unreachable' }
      }
      try {
        if (res.status !== 200) {
          await res.body?.cancel()
          return { result: 'fault', reason: `status_${res.status}` }
        }
        // Read up to the limit only: an endless answer must not fill the isolate's memory.
        const bytes = await readBodyUpTo(res.body, MAX_ANSWER_BYTES)
        if (bytes === undefined) return { result: 'fault', reason: 'answer_too_large' }
        const text = new TextDecoder().decode(bytes)
        return parseAnswer(JSON.parse(text)) ?? { result: 'fault', reason: 'malformed_answer' }
      } catch (err) {
        return { result: 'fault', reason: isTimeout(err) ? 'timeout' : 'malformed_answer' }
      }
    },
    // An empty request: an authority authenticates the caller before it reads the body (protocol
    // v1), so 400 means "there, and this gate's token is good" — and nobody is verified.
    async probe() {
      try {
        const res = await post('{}')
        await res.body?.cancel()
        if (res.status === 400) return { kind: 'ready' }
        return {
          kind: 'unready',
          reason: res.status === 401 ? 'token_refused' : `status_${res.status}`,
        }
      } catch (err) {
        return { kind: 'unready', reason: isTimeout(err) ? 'timeout' : 'unreachable' }
      }
    },
  }
}

/** Validate an authority's JSON answer; undefined for anything not exactly a v1 verdict. */
export function parseAnswer(body: unknown): VerifyResponse | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const b = body as Record<string, unknown>
  if (b.result === 'denied') {
    const reason = b.reason
    if (
      reason === 'logon_denied' ||
      reason === 'server_mismatch' ||
      reason === 'unsupported_algorithm'
    ) {
      return { result: 'denied', reason }
    }
    return undefined
  }
  if (b.result !== 'ok') return undefined
  const p = b.principal as Record<string, unknown> | null | undefined
  const algorithm = typeof b.algorithm === 'string' ? parseAlgorithmName(b.algorithm) : undefined
  if (
    typeof p !== 'object' ||
    p === null ||
    typeof p.name !== 'string' ||
    p.name.length === 0 ||
    !Array.isArray(p.groups) ||
    !p.groups.every((g) => typeof g === 'string') ||
    typeof b.sessionKey !== 'string' ||
    !algorithm ||
    b.sessionKey.length !== HEX_DIGEST_LENGTH[hashOf(algorithm)] ||
    !/^[0-9a-f]+$/i.test(b.sessionKey)
  ) {
    return undefined
  }
  return {
    result: 'ok',
    principal: { name: p.name, groups: p.groups as string[] },
    sessionKey: b.sessionKey.toLowerCase(),
    algorithm,
  }
}
