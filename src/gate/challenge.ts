/** Building the 401 answer: one Digest challenge per algorithm, all sharing one nonce and opaque. */
import { formatChallenge } from '../digest/header.ts'
import type { ContextHandle, TokenMinter } from '../digest/tokens.ts'
import type { AlgorithmName, Qop } from '../digest/types.ts'

export interface ChallengeSettings {
  realm: string
  serverId: string
  algorithms: AlgorithmName[]
  qop: Qop[]
  userhash: boolean
}

/**
 * The WWW-Authenticate values for a context handle. Strongest first, MD5 last: curl and Chromium
 * take the first they know, python-requests and wget the last (clients.md §9).
 */
export async function challengeValues(
  settings: ChallengeSettings,
  minter: TokenMinter,
  handle: ContextHandle,
  now: number,
  stale: boolean
): Promise<string[]> {
  const [nonce, opaque] = await Promise.all([
    minter.mintNonce({ serverId: settings.serverId, handle, now }),
    minter.mintOpaque(handle),
  ])
  return settings.algorithms.map((algorithm) =>
    formatChallenge({
      realm: settings.realm,
      qop: settings.qop.length > 0 ? settings.qop : undefined,
      algorithm,
      nonce,
      opaque,
      stale: stale || undefined,
      charset: 'UTF-8',
      userhash: settings.userhash || undefined,
    })
  )
}
