/**
 * The simple form's authority: the users given to digestAuth(), verified in this process. It
 * answers exactly as a remote authority would (protocol v1), so the rest of the middleware does not
 * know the difference: the session key it hands back is H(name:realm:password) for the hash the
 * client used.
 */
import type { VerifyRequest } from '../authority-protocol/v1.ts'
import {
  baseHA1,
  computeResponse,
  hashOf,
  timingSafeEqualString,
  userhash,
} from '../digest/algorithms.ts'
import type { HashName } from '../digest/types.ts'
import type { AuthorityAnswer, AuthorityClient } from './authority-client.ts'
import type { LocalUser, LocalUsers } from './options.ts'

export function localAuthority(users: LocalUsers): AuthorityClient {
  const lookup =
    typeof users === 'function'
      ? users
      : (name: string) => (Object.hasOwn(users, name) ? users[name] : undefined)
  // userhash → name, per hash and realm, built on first use (only a record can be hashed).
  const byHash = new Map<string, Map<string, string>>()
  const nameOfHash = (hash: HashName, realm: string, value: string): string | undefined => {
    if (typeof users === 'function') return undefined
    const key = `${hash} ${realm}`
    let names = byHash.get(key)
    if (!names) {
      names = new Map(Object.keys(users).map((n) => [userhash(hash, n, realm), n]))
      byHash.set(key, names)
    }
    return names.get(value.toLowerCase())
  }

  return {
    async verify(request: VerifyRequest): Promise<AuthorityAnswer> {
      const d = request.directives
      const algorithm = d.algorithm ?? 'MD5'
      const hash = hashOf(algorithm)
      const name = d.userhash ? nameOfHash(hash, d.realm, d.username) : d.username
      const user = name === undefined ? undefined : await lookup(name, d.realm)
      if (name === undefined || user === undefined) {
        return { result: 'denied', reason: 'logon_denied' }
      }
      const ha1 = keyOf(user, hash, name, d.realm)
      if (ha1 === undefined) return { result: 'denied', reason: 'unsupported_algorithm' }
      const expected = computeResponse({
        algorithm,
        ha1,
        nonce: d.nonce,
        nc: d.nc,
        cnonce: d.cnonce,
        qop: d.qop,
        method: request.method,
        uri: d.uri,
        bodyHash: request.bodyHash,
      })
      if (!timingSafeEqualString(expected, d.response.toLowerCase())) {
        return { result: 'denied', reason: 'logon_denied' }
      }
      const groups = typeof user === 'string' ? [] : [...(user.groups ?? [])]
      return { result: 'ok', principal: { name, groups }, sessionKey: ha1, algorithm }
    },
  }
}

/** H(name:realm:password) for `hash`, or undefined when a stored H(A1) is for another hash. */
function keyOf(user: LocalUser, hash: HashName, name: string, realm: string): string | undefined {
  if (typeof user === 'string') return baseHA1(hash, name, realm, user)
  if ('password' in user) return baseHA1(hash, name, realm, user.password)
  return (user.hash ?? 'MD5') === hash ? user.ha1.toLowerCase() : undefined
}
