/**
 * Refusals as HTTP responses: 401 with challenges, 400, 413, 429 and 503 with Retry-After. None
 * may be stored by a cache: a challenge's nonce is fresh per answer, and a refusal is for one
 * request.
 */
import type { Context } from 'hono'
import { formatChallenge } from '../digest/header.ts'
import { type ContextHandle, newContextHandle, type TokenMinter } from '../digest/tokens.ts'
import type { AlgorithmName } from '../digest/types.ts'
import { arrangeAlgorithms } from './challenge-order.ts'
import type { MessageOption } from './options.ts'
import type { ResolvedOptions } from './resolve-options.ts'
import type { ChallengeRefusal, ErrorRefusal } from './verdict.ts'

const ERROR_NAMES = {
  400: 'invalid_request',
  413: 'payload_too_large',
  429: 'too_many_requests',
  503: 'authority_unavailable',
}

export async function refusalResponse(
  c: Context,
  o: ResolvedOptions,
  minter: TokenMinter,
  refusal: ChallengeRefusal | ErrorRefusal,
  now: number
): Promise<Response> {
  if (refusal.kind === 'error') {
    const res = await messageResponse(
      c,
      refusal.status,
      refusal.status === 400 ? o.invalidRequestMessage : undefined,
      { error: ERROR_NAMES[refusal.status], message: refusal.message }
    )
    if (refusal.retryAfter !== undefined) res.headers.set('Retry-After', String(refusal.retryAfter))
    res.headers.set('Cache-Control', 'no-store')
    return res
  }
  const stale = refusal.staleHandle !== undefined
  // A stale answer keeps the client's context (it was verified); anything else starts a new one,
  // whose nonce is marked fresh: an answer on it names no context until a login establishes one.
  const handle = refusal.staleHandle ?? newContextHandle()
  const res = await messageResponse(c, 401, o.unauthorizedMessage, {
    error: 'unauthorized',
    message: stale ? 'nonce is stale: retry with the new nonce' : 'authentication required',
  })
  const algorithms = arrangeAlgorithms(o.algorithms, c.req.header('user-agent'))
  for (const v of await challengeValues(o, algorithms, minter, handle, now, stale)) {
    res.headers.append('WWW-Authenticate', v)
  }
  res.headers.set('Cache-Control', 'no-store')
  // The challenges' order depends on the client (challenge-order.ts).
  res.headers.append('Vary', 'User-Agent')
  return res
}

async function messageResponse(
  c: Context,
  status: number,
  custom: MessageOption | undefined,
  fallback: { error: string; message: string }
): Promise<Response> {
  const body =
    custom === undefined ? fallback : typeof custom === 'function' ? await custom(c) : custom
  return typeof body === 'string'
    ? new Response(body, { status, headers: { 'content-type': 'text/plain; charset=UTF-8' } })
    : Response.json(body, { status })
}

/**
 * The WWW-Authenticate values for a context handle: one Digest challenge per algorithm, in the
 * given order, all sharing one nonce and one opaque (clients pair a nonce with an algorithm
 * loosely: docs/clients.md). Not stale = a new handle: the nonce is minted `fresh`.
 */
async function challengeValues(
  o: ResolvedOptions,
  algorithms: readonly AlgorithmName[],
  minter: TokenMinter,
  handle: ContextHandle,
  now: number,
  stale: boolean
): Promise<string[]> {
  const [nonce, opaque] = await Promise.all([
    minter.mintNonce({ serverId: o.serverId, handle, now, fresh: !stale }),
    minter.mintOpaque(handle),
  ])
  return algorithms.map((algorithm) =>
    formatChallenge({
      realm: o.realm,
      qop: o.qop.length > 0 ? o.qop : undefined,
      algorithm,
      nonce,
      opaque,
      stale: stale || undefined,
      charset: 'UTF-8',
      userhash: o.userhash || undefined,
    })
  )
}
