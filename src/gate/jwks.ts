/**
 * The assertion's public keys as a JWK Set (RFC 7517 §5), for origins to verify the identity
 * assertion with any JWT library and no secret: the current key and the one before a rotation.
 * Public, never behind Digest, and cacheable for a few minutes.
 */
import { type PublicJwk, type PublishedKey, publicJwk } from './assertion-keys.ts'

export const JWKS_PATH = '/.digest-gate/jwks.json'

/** Verifiers may keep the set this long; JWT libraries fetch it again for a `kid` they lack. */
export const JWKS_MAX_AGE_SECONDS = 300

/** The endpoint's handler; the set is built once (per isolate and configuration). */
export function jwksEndpoint(keys: PublishedKey[]): (request: Request) => Promise<Response> {
  let document: Promise<{ keys: PublicJwk[] }> | undefined
  return async (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      console.log(
        JSON.stringify({
          event: 'digest-gate.jwks_refused',
          reason: 'method',
          method: request.method,
        })
      )
      return Response.json(
        { error: 'method_not_allowed', message: 'the key set is read with GET' },
        { status: 405, headers: { allow: 'GET, HEAD', 'cache-control': 'no-store' } }
      )
    }
    if (keys.length === 0) {
      return Response.json(
        {
          error: 'not_found',
          message:
            'no public keys: the assertion is signed with a shared secret (HS256) or not at all',
        },
        { status: 404, headers: { 'cache-control': 'no-store' } }
      )
    }
    document ??= buildSet(keys)
    let set: { keys: PublicJwk[] }
    try {
      set = await document
    } catch (err) {
      document = undefined
      throw err
    }
    return Response.json(set, {
      headers: { 'cache-control': `public, max-age=${JWKS_MAX_AGE_SECONDS}` },
    })
  }
}

/** One entry per kid: ASSERTION_KEY_PREVIOUS may still be the current key during a rotation. */
async function buildSet(keys: PublishedKey[]): Promise<{ keys: PublicJwk[] }> {
  const jwks = await Promise.all(keys.map(publicJwk))
  return { keys: jwks.filter((jwk, i) => jwks.findIndex((other) => other.kid === jwk.kid) === i) }
}
