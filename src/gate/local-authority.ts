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
  HEX_DIGEST_LENGTH,
  hashOf,
  timingSafeEqualString,
  userhash,
} from '../digest/algorithms.ts'
import type { HashName } from '../digest/types.ts'
import type { AuthorityAnswer, AuthorityClient } from './authority-client.ts'
import type { LocalUser, LocalUsers } from './options.ts'

/** Throws TypeError on a record of users that could not work (checked when the gate is built). */
export function localAuthority(users: LocalUsers): AuthorityClient {
  if (typeof users !== 'function') {
    if (typeof users !== 'object' || users === null) throw new TypeError('users: not a record')
    for (const [name, user] of Object.entries(users)) {
      const problem = userProblem(user)
      // Names the user, never the password.
      if (problem) throw new TypeError(`users: ${JSON.stringify(name)} ${problem}`)
    }
  }
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
      let found: LocalUser | null | undefined
      try {
        found = name === undefined ? undefined : await lookup(name, d.realm)
      } catch {
        // The AuthorityClient contract: a fault is answered (503 + Retry-After), never thrown (a
        // 500 whose error text might carry what the lookup held).
        return { result: 'fault', reason: 'lookup_failed' }
      }
      const user = found ?? undefined
      // What a lookup answers is checked like a record: an empty password is no password, and
      // `passwords[name]` answers a function for `constructor`. Either is no such user.
      if (user !== undefined && typeof users === 'function' && userProblem(user)) {
        return { result: 'denied', reason: 'logon_denied' }
      }
      // An unknown name costs the same hashes as a wrong password: its answer must not be faster.
      const ha1 =
        user === undefined || name === undefined
          ? baseHA1(hash, d.username, d.realm, '')
          : keyOf(user, hash, name, d.realm)
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
      const match = timingSafeEqualString(expected, d.response.toLowerCase())
      if (user === undefined || name === undefined || !match) {
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

/** Why a user could never log in (or would log in with no password); undefined when usable. */
function userProblem(user: unknown): string | undefined {
  if (typeof user === 'string') return user === '' ? 'has an empty password' : undefined
  if (typeof user !== 'object' || user === null) return 'is neither a password nor a user object'
  const u = user as { password?: unknown; ha1?: unknown; hash?: unknown; groups?: unknown }
  if (u.groups !== undefined) {
    if (!Array.isArray(u.groups) || u.groups.some((g) => typeof g !== 'string')) {
      return 'has groups that are not an array of strings'
    }
  }
  if ('password' in u) {
    if (typeof u.password !== 'string') return 'has a password that is not a string'
    return u.password === '' ? 'has an empty password' : undefined
  }
  if (!('ha1' in u)) return 'has neither a password nor an ha1'
  const hash = u.hash ?? 'MD5'
  if (typeof hash !== 'string' || !Object.hasOwn(HEX_DIGEST_LENGTH, hash)) {
    return 'has an unknown hash (MD5, SHA-256 or SHA-512-256)'
  }
  const length = HEX_DIGEST_LENGTH[hash as HashName]
  if (typeof u.ha1 !== 'string' || !new RegExp(`^[0-9a-fA-F]{${length}}$`).test(u.ha1)) {
    return `has an ha1 that is not ${length} hex digits`
  }
  return undefined
}
