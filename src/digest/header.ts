/**
 * Header grammar (RFC 7235 §2.1 auth-param lists, RFC 7616 §3.3-3.5, RFC 8187 for `username*`).
 * Pure: no I/O, throws only DigestError.
 *
 * Reading is tolerant where real clients differ: every directive is accepted quoted or not
 * (python-requests quotes qop and algorithm, axios quotes nc), names are case-insensitive, empty
 * list elements are skipped, nc may have 1-8 hex digits (kept verbatim in ncRaw). Non-ASCII text
 * in quoted values follows decodeHeaderText (raw UTF-8 decoded, else kept as Latin-1).
 * Writing follows the RFC 7616 examples: realm, nonce, opaque, domain, uri, cnonce, username,
 * response, rspauth, nextnonce and the challenge's qop list quoted; algorithm, stale, charset,
 * userhash, nc and the credentials' qop bare.
 */
import { parseAlgorithmName } from './algorithms.ts'
import {
  type AuthParam,
  directiveMap,
  hasForbiddenInQuoted,
  parseAuthItems,
  parseAuthParams,
  quoteString,
} from './auth-params.ts'
import { DigestError } from './errors.ts'
import { decodeHeaderText, isPrintableAscii } from './header-text.ts'
import { decodeExtValue, encodeExtValue } from './rfc8187.ts'
import type { AuthenticationInfo, DigestChallenge, DigestCredentials, Qop } from './types.ts'

/** Hard limits: a header longer or with more directives than this is refused. */
export const MAX_HEADER_LENGTH = 8192
export const MAX_DIRECTIVES = 32

/** Longest accepted value (after unescaping) per directive; others fall under MAX_VALUE_LENGTH. */
const VALUE_LIMITS: Readonly<Record<string, number>> = {
  username: 512,
  'username*': 6144, // 512 characters, each up to 4 UTF-8 bytes as %XX
  realm: 512,
  nonce: 512,
  opaque: 512,
  cnonce: 256,
  response: 128,
  rspauth: 128,
  nextnonce: 512,
  nc: 8,
}
const MAX_VALUE_LENGTH = 4096

const HEX = /^[0-9a-fA-F]+$/
const NC = /^[0-9a-fA-F]{1,8}$/

function checkLength(header: string): void {
  if (header.length > MAX_HEADER_LENGTH) {
    throw new DigestError('too_long', `header longer than ${MAX_HEADER_LENGTH} characters`)
  }
}

function invalid(directive: string, why: string): never {
  throw new DigestError('invalid_directive', `${directive}: ${why}`, directive)
}

/** Directive lookup over one challenge/credentials, with the charset rule and length limits. */
class Directives {
  readonly map: Map<string, AuthParam>

  constructor(params: readonly AuthParam[]) {
    this.map = directiveMap(params)
  }

  has(name: string): boolean {
    return this.map.has(name)
  }

  get(name: string): string | undefined {
    const p = this.map.get(name)
    if (p === undefined) return undefined
    const value = p.quoted ? decodeHeaderText(p.value) : p.value
    if (value.length > (VALUE_LIMITS[name] ?? MAX_VALUE_LENGTH)) invalid(name, 'too long')
    return value
  }

  require(name: string): string {
    const value = this.get(name)
    if (value === undefined) {
      throw new DigestError('missing_directive', `${name} is required`, name)
    }
    return value
  }
}

function parseBoolean(name: string, value: string): boolean {
  const lower = value.toLowerCase()
  if (lower === 'true') return true
  if (lower === 'false') return false
  return invalid(name, 'expected true or false')
}

function parseQop(name: string, value: string): Qop {
  if (value === 'auth' || value === 'auth-int') return value
  return invalid(name, 'expected auth or auth-int')
}

function parseNc(value: string): number {
  if (!NC.test(value)) invalid('nc', 'expected 1 to 8 hex digits')
  const nc = Number.parseInt(value, 16)
  if (nc === 0) invalid('nc', 'must not be 0')
  return nc
}

function isDigest(scheme: string): boolean {
  return scheme.toLowerCase() === 'digest'
}

/** Parse `Authorization: Digest …`. Throws DigestError on anything malformed. */
export function parseAuthorization(header: string): DigestCredentials {
  checkLength(header)
  const items = parseAuthItems(header, MAX_DIRECTIVES)
  const [item] = items
  if (item === undefined) throw new DigestError('syntax', 'empty Authorization header')
  if (!isDigest(item.scheme)) throw new DigestError('not_digest', 'scheme is not Digest')
  if (items.length > 1) throw new DigestError('syntax', 'stray characters after the credentials')
  if (item.token68 !== undefined) throw new DigestError('syntax', 'Digest takes directives')
  const d = new Directives(item.params)

  const userhashRaw = d.get('userhash')
  const userhash = userhashRaw === undefined ? false : parseBoolean('userhash', userhashRaw)
  const username = readUsername(d, userhash)

  const credentials: DigestCredentials = {
    username,
    userhash,
    realm: d.require('realm'),
    nonce: d.require('nonce'),
    uri: d.require('uri'),
    response: readResponse(d.require('response')),
  }

  const algorithmRaw = d.get('algorithm')
  if (algorithmRaw !== undefined) {
    const algorithm = parseAlgorithmName(algorithmRaw)
    if (algorithm === undefined) invalid('algorithm', 'unknown algorithm')
    credentials.algorithm = algorithm
    credentials.algorithmRaw = algorithmRaw
  }
  const opaque = d.get('opaque')
  if (opaque !== undefined) credentials.opaque = opaque
  const cnonce = d.get('cnonce')
  if (cnonce !== undefined) credentials.cnonce = cnonce
  const ncRaw = d.get('nc')
  if (ncRaw !== undefined) {
    credentials.nc = parseNc(ncRaw)
    credentials.ncRaw = ncRaw
  }
  const qop = d.get('qop')
  if (qop !== undefined) {
    credentials.qop = parseQop('qop', qop)
    if (ncRaw === undefined) throw new DigestError('missing_directive', 'qop without nc', 'nc')
    if (cnonce === undefined) {
      throw new DigestError('missing_directive', 'qop without cnonce', 'cnonce')
    }
  }
  return credentials
}

function readUsername(d: Directives, userhash: boolean): string {
  const plain = d.get('username')
  const ext = d.get('username*')
  if (plain !== undefined && ext !== undefined) {
    throw new DigestError('duplicate_directive', 'both username and username*', 'username*')
  }
  if (plain !== undefined) return plain
  if (ext === undefined) {
    throw new DigestError('missing_directive', 'username is required', 'username')
  }
  // RFC 7616 §3.4.4: a hashed username is hex and never needs username*.
  if (userhash) invalid('username*', 'not allowed with userhash=true')
  const decoded = decodeExtValue(ext)
  if (decoded === undefined) invalid('username*', 'malformed RFC 8187 ext-value')
  if (decoded.length > (VALUE_LIMITS.username ?? MAX_VALUE_LENGTH)) invalid('username*', 'too long')
  // Percent-encoding can carry what a quoted username cannot (NUL, CR, LF, DEL): refused alike,
  // so no second spelling smuggles control characters to the authority, the brakes or the logs.
  checkNoControls(decoded)
  return decoded
}

function checkNoControls(username: string): void {
  if (hasForbiddenInQuoted(username)) invalid('username*', 'control character')
}

function readResponse(value: string): string {
  if (!HEX.test(value)) invalid('response', 'expected hex digits')
  // RFC 7616 writes LHEX; some clients send upper case. Lower-case so comparisons are exact.
  return value.toLowerCase()
}

/**
 * Format an `Authorization: Digest …` value (the client side). A name that is not printable
 * ASCII goes as `username*` (RFC 8187) unless it is a userhash; `charset` has no directive of its
 * own in credentials and is not written. nc is ncRaw when given, else 8 hex digits.
 */
export function formatAuthorization(
  credentials: DigestCredentials & { charset?: 'UTF-8' }
): string {
  const c = credentials
  const parts: string[] = []
  // Non-printable-ASCII names go as username* (RFC 7616 §3.4); a userhash is hex anyway.
  if (c.userhash || isPrintableAscii(c.username)) {
    parts.push(`username=${quoteString(c.username, 'username')}`)
  } else {
    checkNoControls(c.username)
    parts.push(`username*=${encodeExtValue(c.username)}`)
  }
  parts.push(`realm=${quoteString(c.realm, 'realm')}`)
  parts.push(`uri=${quoteString(c.uri, 'uri')}`)
  if (c.algorithm !== undefined) parts.push(`algorithm=${c.algorithm}`)
  parts.push(`nonce=${quoteString(c.nonce, 'nonce')}`)
  if (c.ncRaw !== undefined || c.nc !== undefined) parts.push(`nc=${formatNc(c)}`)
  if (c.cnonce !== undefined) parts.push(`cnonce=${quoteString(c.cnonce, 'cnonce')}`)
  if (c.qop !== undefined) parts.push(`qop=${c.qop}`)
  parts.push(`response=${quoteString(c.response, 'response')}`)
  if (c.opaque !== undefined) parts.push(`opaque=${quoteString(c.opaque, 'opaque')}`)
  if (c.userhash) parts.push('userhash=true')
  return `Digest ${parts.join(', ')}`
}

function formatNc(c: DigestCredentials): string {
  if (c.ncRaw !== undefined) {
    if (!NC.test(c.ncRaw)) invalid('nc', 'expected 1 to 8 hex digits')
    return c.ncRaw
  }
  const nc = c.nc ?? 0
  if (!Number.isInteger(nc) || nc < 1 || nc > 0xffffffff) invalid('nc', 'out of range')
  return ncHex(nc)
}

/** nc as RFC 7616 sends it: 8 lower-case hex digits. */
export function ncHex(nc: number): string {
  return nc.toString(16).padStart(8, '0')
}

/**
 * Parse every Digest challenge in one or several `WWW-Authenticate` values (other schemes,
 * e.g. Basic, are skipped). Unknown directives are ignored; malformed ones throw DigestError.
 * A challenge with an unknown algorithm, or whose qop offers nothing we know, is skipped
 * (RFC 7616 §3.3: "the challenge should be ignored").
 */
export function parseChallenges(headers: string | string[]): DigestChallenge[] {
  const values = typeof headers === 'string' ? [headers] : headers
  const out: DigestChallenge[] = []
  for (const value of values) {
    checkLength(value)
    for (const item of parseAuthItems(value, MAX_DIRECTIVES)) {
      if (!isDigest(item.scheme)) continue
      if (item.token68 !== undefined) throw new DigestError('syntax', 'Digest takes directives')
      const challenge = readChallenge(new Directives(item.params))
      if (challenge !== undefined) out.push(challenge)
    }
  }
  return out
}

function readChallenge(d: Directives): DigestChallenge | undefined {
  const challenge: DigestChallenge = { realm: d.require('realm'), nonce: d.require('nonce') }
  const opaque = d.get('opaque')
  if (opaque !== undefined) challenge.opaque = opaque
  const algorithmRaw = d.get('algorithm')
  if (algorithmRaw !== undefined) {
    const algorithm = parseAlgorithmName(algorithmRaw)
    if (algorithm === undefined) return undefined
    challenge.algorithm = algorithm
  }
  const qopRaw = d.get('qop')
  if (qopRaw !== undefined) {
    const offered = qopRaw.split(',').map((q) => q.trim())
    const qop = offered.filter((q): q is Qop => q === 'auth' || q === 'auth-int')
    if (qop.length === 0) return undefined
    challenge.qop = [...new Set(qop)]
  }
  const stale = d.get('stale')
  // RFC 7616 §3.3: anything other than true (case-insensitive) means false.
  if (stale !== undefined) challenge.stale = stale.toLowerCase() === 'true'
  const domain = d.get('domain')
  if (domain !== undefined) challenge.domain = domain.split(/[ \t]+/).filter((u) => u !== '')
  const charset = d.get('charset')
  if (charset !== undefined && charset.toLowerCase() === 'utf-8') challenge.charset = 'UTF-8'
  const userhash = d.get('userhash')
  if (userhash !== undefined) challenge.userhash = userhash.toLowerCase() === 'true'
  return challenge
}

/** Format one challenge: `Digest realm="…", qop="auth", algorithm=SHA-256, nonce="…", …`. */
export function formatChallenge(challenge: DigestChallenge): string {
  const c = challenge
  const parts = [`realm=${quoteString(c.realm, 'realm')}`]
  if (c.qop !== undefined && c.qop.length > 0)
    parts.push(`qop=${quoteString(c.qop.join(', '), 'qop')}`)
  if (c.algorithm !== undefined) parts.push(`algorithm=${c.algorithm}`)
  parts.push(`nonce=${quoteString(c.nonce, 'nonce')}`)
  if (c.opaque !== undefined) parts.push(`opaque=${quoteString(c.opaque, 'opaque')}`)
  if (c.stale !== undefined) parts.push(`stale=${c.stale}`)
  if (c.domain !== undefined && c.domain.length > 0) {
    for (const uri of c.domain) {
      if (uri === '' || /[ \t]/.test(uri)) invalid('domain', 'URIs must be non-empty, no spaces')
    }
    parts.push(`domain=${quoteString(c.domain.join(' '), 'domain')}`)
  }
  if (c.charset !== undefined) parts.push(`charset=${c.charset}`)
  if (c.userhash !== undefined) parts.push(`userhash=${c.userhash}`)
  return `Digest ${parts.join(', ')}`
}

export function parseAuthenticationInfo(header: string): AuthenticationInfo {
  checkLength(header)
  const d = new Directives(parseAuthParams(header, MAX_DIRECTIVES))
  const info: AuthenticationInfo = {}
  const nextnonce = d.get('nextnonce')
  if (nextnonce !== undefined) info.nextnonce = nextnonce
  const qop = d.get('qop')
  if (qop !== undefined) info.qop = parseQop('qop', qop)
  const rspauth = d.get('rspauth')
  if (rspauth !== undefined) {
    if (!HEX.test(rspauth)) invalid('rspauth', 'expected hex digits')
    info.rspauth = rspauth.toLowerCase()
  }
  const cnonce = d.get('cnonce')
  if (cnonce !== undefined) info.cnonce = cnonce
  const nc = d.get('nc')
  if (nc !== undefined) {
    parseNc(nc)
    info.nc = nc
  }
  return info
}

export function formatAuthenticationInfo(info: AuthenticationInfo): string {
  const parts: string[] = []
  if (info.nextnonce !== undefined)
    parts.push(`nextnonce=${quoteString(info.nextnonce, 'nextnonce')}`)
  if (info.qop !== undefined) parts.push(`qop=${info.qop}`)
  if (info.rspauth !== undefined) parts.push(`rspauth=${quoteString(info.rspauth, 'rspauth')}`)
  if (info.cnonce !== undefined) parts.push(`cnonce=${quoteString(info.cnonce, 'cnonce')}`)
  if (info.nc !== undefined) {
    if (!NC.test(info.nc)) invalid('nc', 'expected 1 to 8 hex digits')
    parts.push(`nc=${info.nc}`)
  }
  return parts.join(', ')
}
