/**
 * The signed identity assertion forwarded to the origin (like Cloudflare Access's
 * Cf-Access-Jwt-Assertion): a short-lived HS256 JWT, so the origin can trust the identity headers.
 */
import { sign } from 'hono/jwt'
import type { Principal } from '../authority-protocol/v1.ts'

export const ASSERTION_TTL_SECONDS = 60

export function signAssertion(
  principal: Principal,
  claims: { issuer: string; audience: string; realm: string; now: number },
  key: string
): Promise<string> {
  return sign(
    {
      iss: claims.issuer,
      aud: claims.audience,
      sub: principal.name,
      groups: principal.groups,
      realm: claims.realm,
      iat: claims.now,
      exp: claims.now + ASSERTION_TTL_SECONDS,
    },
    key,
    'HS256'
  )
}
