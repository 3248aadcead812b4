/**
 * The signed identity assertion forwarded to the origin (like Cloudflare Access's
 * Cf-Access-Jwt-Assertion): a short-lived JWT, so the origin can trust the identity headers. Signed
 * ES256 or EdDSA with a key whose public half the gate publishes (jwks.ts), or HS256 with a shared
 * secret (assertion-keys.ts).
 */
import type { Principal } from '../authority-protocol/v1.ts'
import { encodeBase64Url } from '../digest/base64url.ts'
import { type AssertionKey, type SigningKey, signingKey, WEB_CRYPTO } from './assertion-keys.ts'

export const ASSERTION_TTL_SECONDS = 60

const encoder = new TextEncoder()

const jsonPart = (value: unknown) => encodeBase64Url(encoder.encode(JSON.stringify(value)))

/**
 * The JWS signature of `signingInput` (RFC 7515 §5.1), base64url. By hand because hono/jwt's
 * sign() writes a `kid` only for a key given as a JWK, which it then imports on every call.
 */
export async function jwsSignature(signingInput: string, key: SigningKey): Promise<string> {
  const algorithm = WEB_CRYPTO[key.alg].sign
  const signature = await crypto.subtle.sign(algorithm, key.key, encoder.encode(signingInput))
  return encodeBase64Url(new Uint8Array(signature))
}

/**
 * Tokens of the current second: within one second every claim of a principal's assertion for an
 * audience is the same, so is the token, and a session's requests mostly share the second. Kept
 * as strings once signed: awaiting a promise another request created costs workerd far more
 * than the lookup (~0.03 ms a request, measured).
 */
let recentSecond = -1
const recent = new Map<string, string>()
const pending = new Map<string, Promise<string>>()
/** One small id per key object, so that lookups do not serialise the key. */
const keyIds = new WeakMap<AssertionKey, number>()
let nextKeyId = 0

/** The token, synchronously when this isolate signed it in the same second. */
export function signAssertion(
  principal: Principal,
  claims: { issuer: string; audience: string; realm: string; now: number },
  key: AssertionKey
): string | Promise<string> {
  if (claims.now !== recentSecond) {
    recent.clear()
    pending.clear()
    recentSecond = claims.now
  }
  let keyId = keyIds.get(key)
  if (keyId === undefined) {
    keyId = nextKeyId++
    keyIds.set(key, keyId)
  }
  const id = JSON.stringify([
    keyId,
    principal.name,
    principal.groups,
    claims.issuer,
    claims.audience,
    claims.realm,
  ])
  const done = recent.get(id)
  if (done !== undefined) return done
  let token = pending.get(id)
  if (!token) {
    const second = claims.now
    token = signingKey(key).then(async (signing) => {
      // HS256 tokens keep the header of earlier versions: no kid, nothing to look it up in.
      const header =
        signing.kid === undefined
          ? { alg: signing.alg, typ: 'JWT' }
          : { alg: signing.alg, typ: 'JWT', kid: signing.kid }
      const input = `${jsonPart(header)}.${jsonPart({
        iss: claims.issuer,
        aud: claims.audience,
        sub: principal.name,
        groups: principal.groups,
        realm: claims.realm,
        iat: claims.now,
        exp: claims.now + ASSERTION_TTL_SECONDS,
      })}`
      const signed = `${input}.${await jwsSignature(input, signing)}`
      if (recentSecond === second) recent.set(id, signed)
      return signed
    })
    const settled = token
    settled.finally(() => pending.get(id) === settled && pending.delete(id)).catch(() => {})
    pending.set(id, settled)
  }
  return token
}
