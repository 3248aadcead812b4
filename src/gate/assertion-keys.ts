/**
 * The keys of the identity assertion. ASSERTION_KEY holds a private JWK — EC P-256 signs ES256,
 * OKP Ed25519 signs EdDSA — whose public half the gate publishes, so that origins verify without
 * holding anything that could mint an identity (as with Cloudflare Access); or a plain secret
 * string, which signs HS256 as before (every origin that verifies can then also mint, and nothing
 * can be published). ASSERTION_KEY_PREVIOUS, the key before a rotation, is only published: tokens
 * it signed keep verifying while origins still hold them. Errors name the variable, never a value.
 */
import { decodeBase64Url, encodeBase64Url } from '../digest/base64url.ts'
import { ConfigError } from './config-error.ts'

/** The members that define a key (RFC 7518 §6.2, RFC 8037 §2), and the private `d`. */
export interface KeyMembers {
  kty: 'EC' | 'OKP'
  crv: 'P-256' | 'Ed25519'
  x: string
  /** EC only. */
  y?: string
  /** The private key; absent from a public JWK. */
  d?: string
}

/** A key whose public half can be published. */
export interface PublishedKey {
  alg: 'ES256' | 'EdDSA'
  members: KeyMembers
  /** The JWK's own `kid`; without one, its RFC 7638 thumbprint names it. */
  kid: string | undefined
  /** The variable it was read from, for errors. */
  variable: string
}

/** The key that signs the assertion. */
export type AssertionKey =
  | { alg: 'HS256'; secret: string; variable: string }
  | (PublishedKey & { members: { d: string } })

/** A public key as published in the JWK Set. */
export interface PublicJwk {
  kty: KeyMembers['kty']
  crv: KeyMembers['crv']
  x: string
  y?: string
  kid: string
  alg: PublishedKey['alg']
  use: 'sig'
}

/** A key imported for signing, with what the JWS header names. */
export interface SigningKey {
  alg: AssertionKey['alg']
  kid: string | undefined
  key: CryptoKey
}

/** Web Crypto's names for each JWS algorithm: to import the key, and to sign or verify. */
export const WEB_CRYPTO = {
  HS256: { key: { name: 'HMAC', hash: 'SHA-256' }, sign: { name: 'HMAC' } },
  ES256: { key: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } },
  EdDSA: { key: { name: 'Ed25519' }, sign: { name: 'Ed25519' } },
} as const

/** The key types accepted, by `kty` and `crv`. */
const CURVES: ReadonlyMap<string, { alg: PublishedKey['alg']; coordinates: ('x' | 'y')[] }> =
  new Map([
    ['EC P-256', { alg: 'ES256', coordinates: ['x', 'y'] }],
    ['OKP Ed25519', { alg: 'EdDSA', coordinates: ['x'] }],
  ])

/** P-256 coordinates and private keys, and Ed25519 keys, are all 32 bytes. */
const KEY_BYTES = 32

const encoder = new TextEncoder()

/** ASSERTION_KEY: a private JWK (ES256, EdDSA) or a plain secret string (HS256). */
export function readAssertionKey(value: string, variable: string): AssertionKey {
  const text = value.trim()
  if (text.startsWith('-----BEGIN')) {
    throw new ConfigError(`${variable} holds a PEM key: give the private key as a JWK`)
  }
  // Kept untrimmed: the HS256 secret of earlier versions, byte for byte.
  if (!/^[{[]/.test(text)) return { alg: 'HS256', secret: value, variable }
  const key = readJwk(text, variable)
  if (key.members.d === undefined) {
    throw new ConfigError(
      `${variable} holds a public JWK: the gate signs with the private one ("d")`
    )
  }
  return key as AssertionKey
}

/** ASSERTION_KEY_PREVIOUS: a JWK, private or public (only its public half is used). */
export function readPublishedKey(value: string, variable: string): PublishedKey {
  const text = value.trim()
  if (!/^[{[]/.test(text)) {
    throw new ConfigError(
      `${variable} must be a JWK (EC P-256 or OKP Ed25519): an HS256 secret cannot be published`
    )
  }
  return readJwk(text, variable)
}

function readJwk(text: string, variable: string): PublishedKey {
  let jwk: unknown
  try {
    jwk = JSON.parse(text)
  } catch {
    throw new ConfigError(`${variable} looks like JSON but does not parse: expected a JWK`)
  }
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) {
    throw new ConfigError(`${variable} must be one JWK object`)
  }
  const j = jwk as Record<string, unknown>
  if ('keys' in j) throw new ConfigError(`${variable} holds a JWK Set: give the one key`)
  const curve =
    typeof j.kty === 'string' && typeof j.crv === 'string'
      ? CURVES.get(`${j.kty} ${j.crv}`)
      : undefined
  if (!curve) {
    throw new ConfigError(`${variable} must be an EC P-256 (ES256) or OKP Ed25519 (EdDSA) JWK`)
  }
  if (j.alg !== undefined && j.alg !== curve.alg) {
    throw new ConfigError(`${variable}: "alg" must be ${curve.alg} for this key type`)
  }
  if (j.use !== undefined && j.use !== 'sig') {
    throw new ConfigError(`${variable}: "use" must be "sig"`)
  }
  if (j.kid !== undefined && !(typeof j.kid === 'string' && /^[\x20-\x7e]{1,256}$/.test(j.kid))) {
    throw new ConfigError(`${variable}: "kid" must be 1 to 256 printable ASCII characters`)
  }
  const members = { kty: j.kty, crv: j.crv } as KeyMembers
  for (const name of [...curve.coordinates, 'd'] as const) {
    const v = j[name]
    if (v === undefined && name === 'd') continue
    if (typeof v !== 'string' || decodeBase64Url(v)?.length !== KEY_BYTES) {
      throw new ConfigError(`${variable}: "${name}" must be ${KEY_BYTES} bytes in base64url`)
    }
    members[name] = v
  }
  return { alg: curve.alg, members, kid: j.kid as string | undefined, variable }
}

/**
 * The keys origins verify with: the current one unless it is a shared secret, and the previous
 * one. Verifiers choose a key by `kid`, so two different keys may not share one.
 */
export function publishedKeys(
  current: AssertionKey | undefined,
  previous: PublishedKey | undefined
): PublishedKey[] {
  const keys = [current, previous].filter(
    (k): k is PublishedKey => k !== undefined && k.alg !== 'HS256'
  )
  const [a, b] = keys
  if (a && b && a.kid !== undefined && a.kid === b.kid && a.members.x !== b.members.x) {
    throw new ConfigError(`${b.variable} has the "kid" of ${a.variable}, but is another key`)
  }
  return keys
}

/** RFC 7638 §3: SHA-256 of the required members, in lexicographic order, without whitespace. */
export async function jwkThumbprint(m: KeyMembers): Promise<string> {
  const required =
    m.kty === 'EC' ? { crv: m.crv, kty: m.kty, x: m.x, y: m.y } : { crv: m.crv, kty: m.kty, x: m.x }
  const digest = await crypto.subtle.digest('SHA-256', encoder.encode(JSON.stringify(required)))
  return encodeBase64Url(new Uint8Array(digest))
}

/** The key as published: its public members, `kid`, `alg` and `use`. */
export async function publicJwk(key: PublishedKey): Promise<PublicJwk> {
  const { kty, crv, x, y } = key.members
  const members = y === undefined ? { kty, crv, x } : { kty, crv, x, y }
  try {
    await crypto.subtle.importKey('jwk', members, WEB_CRYPTO[key.alg].key, false, ['verify'])
  } catch {
    throw new ConfigError(`${key.variable} is not a valid ${key.alg} key (a point off its curve)`)
  }
  return {
    ...members,
    kid: key.kid ?? (await jwkThumbprint(key.members)),
    alg: key.alg,
    use: 'sig',
  }
}

/** Keys imported once per isolate: importing one per request cost ~4% of the hot path. */
const imported = new Map<string, Promise<SigningKey>>()

export function signingKey(key: AssertionKey): Promise<SigningKey> {
  const id = JSON.stringify(key)
  let found = imported.get(id)
  if (!found) {
    found = importSigningKey(key)
    found.catch(() => imported.delete(id))
    imported.set(id, found)
  }
  return found
}

async function importSigningKey(key: AssertionKey): Promise<SigningKey> {
  if (key.alg === 'HS256') {
    const secret = encoder.encode(key.secret)
    const hmac = await crypto.subtle.importKey('raw', secret, WEB_CRYPTO.HS256.key, false, ['sign'])
    return { alg: 'HS256', kid: undefined, key: hmac }
  }
  const algorithm = WEB_CRYPTO[key.alg]
  const published = await publicJwk(key)
  let privateKey: CryptoKey
  let publicKey: CryptoKey
  try {
    privateKey = await crypto.subtle.importKey('jwk', key.members, algorithm.key, false, ['sign'])
    publicKey = await crypto.subtle.importKey('jwk', published, algorithm.key, false, ['verify'])
  } catch {
    throw new ConfigError(`${key.variable} is not a valid ${key.alg} private key`)
  }
  // workerd imports an Ed25519 JWK whose "x" is not the public half of its "d"; origins would
  // then verify nothing the gate signs. One signature per isolate proves the halves match.
  const probe = encoder.encode('digest-gate assertion key check')
  const signature = await crypto.subtle.sign(algorithm.sign, privateKey, probe)
  if (!(await crypto.subtle.verify(algorithm.sign, publicKey, signature, probe))) {
    throw new ConfigError(`${key.variable}: the public members are not the half of "d"`)
  }
  return { alg: key.alg, kid: published.kid, key: privateKey }
}
