/**
 * The signed identity assertion forwarded to the origin (like Cloudflare Access's
 * Cf-Access-Jwt-Assertion): a short-lived HS256 JWT, so the origin can trust the identity headers.
 */
import { sign } from 'hono/jwt'
import type { Principal } from '../authority-protocol/v1.ts'

export const ASSERTION_TTL_SECONDS = 60

/** HMAC keys imported once per isolate: importing one per request cost ~4% of the hot path. */
const hmacKeys = new Map<string, Promise<CryptoKey>>()

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = hmacKeys.get(secret)
  if (!key) {
    key = crypto.subtle.importKey(
      'raw',
      new TextEncoder().encode(secret),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign']
    )
    key.catch(() => hmacKeys.delete(secret))
    hmacKeys.set(secret, key)
  }
  return key
}

/**
 * Tokens of the current second: within one second every claim of a principal's assertion for an
 * audience is the same, so is the token, and a session's requests mostly share the second.
 */
let recentSecond = -1
const recent = new Map<string, Promise<string>>()

export function signAssertion(
  principal: Principal,
  claims: { issuer: string; audience: string; realm: string; now: number },
  key: string
): Promise<string> {
  if (claims.now !== recentSecond) {
    recent.clear()
    recentSecond = claims.now
  }
  const id = JSON.stringify([key, principal.name, principal.groups, claims])
  let token = recent.get(id)
  if (!token) {
    token = hmacKey(key).then((cryptoKey) =>
      sign(
        {
          iss: claims.issuer,
          aud: claims.audience,
          sub: principal.name,
          groups: principal.groups,
          realm: claims.realm,
          iat: claims.now,
          exp: claims.now + ASSERTION_TTL_SECONDS,
        },
        cryptoKey,
        'HS256'
      )
    )
    token.catch(() => recent.delete(id))
    recent.set(id, token)
  }
  return token
}
