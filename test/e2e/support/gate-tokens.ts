/**
 * Nonces and opaques for the hostile suites: genuine ones, as the gate under test mints them in
 * its challenges, and well-formed ones it must refuse (minted under a key it does not have, for
 * another server identity, or issued in the future).
 */
import { randomBytes } from 'node:crypto'
import { readDotenv } from '../../../scripts/stack/secrets.ts'
import { parseChallenges } from '../../../src/digest/header.ts'
import { createTokenMinter, newContextHandle } from '../../../src/digest/tokens.ts'
import { keyId } from '../../../src/gate/config.ts'
import type { Genuine } from './hostile-headers.ts'

/** `count` fresh challenges of the gate (each 401 starts a new context handle). */
export async function genuineChallenges(
  url: string,
  count: number,
  clientIp: string
): Promise<Genuine[]> {
  const out: Genuine[] = []
  for (let i = 0; i < count; i++) {
    const response = await fetch(url, { headers: { 'cf-connecting-ip': clientIp } })
    await response.arrayBuffer()
    const [challenge] = parseChallenges(response.headers.get('www-authenticate') ?? '')
    if (response.status !== 401 || !challenge?.opaque) {
      throw new Error(`expected a 401 challenge from ${url}, got ${response.status}`)
    }
    out.push({ nonce: challenge.nonce, opaque: challenge.opaque })
  }
  return out
}

/**
 * Well-formed nonces the gate must refuse at the edge: under a foreign key (same key id, or
 * another one), and under the gate's own key (read from its secrets file) but naming another
 * server or issued an hour ahead.
 */
export async function nonceForgeries(gateSecrets: string, serverId: string): Promise<string[]> {
  const secret = readDotenv(gateSecrets).get('NONCE_KEY')
  if (!secret) throw new Error(`no NONCE_KEY in ${gateSecrets}`)
  const id = keyId(secret)
  const now = Math.floor(Date.now() / 1000)
  const foreignSameId = await createTokenMinter({
    current: { id, secret: randomBytes(32).toString('base64url') },
  })
  const foreignOtherId = await createTokenMinter({
    current: { id: (id + 1) % 256, secret: randomBytes(32).toString('base64url') },
  })
  const own = await createTokenMinter({ current: { id, secret } })
  const out: string[] = []
  for (let i = 0; i < 8; i++) {
    const handle = newContextHandle()
    out.push(
      await foreignSameId.mintNonce({ serverId, handle, now }),
      await foreignOtherId.mintNonce({ serverId, handle, now }),
      await own.mintNonce({ serverId: `${serverId}-evil`, handle, now }),
      await own.mintNonce({ serverId: 'x', handle, now }),
      await own.mintNonce({ serverId, handle, now: now + 3600 })
    )
  }
  return out
}
