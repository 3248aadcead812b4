/**
 * The gate's configuration, read from wrangler.toml vars and secrets, validated once per isolate.
 * A bad value is reported by name, so a deploy with a typo fails loudly and clearly.
 */
import { parseAlgorithmName } from '../digest/algorithms.ts'
import type { ReplayMode } from '../digest/nc-window.ts'
import type { TokenKeys } from '../digest/tokens.ts'
import type { AlgorithmName, Qop } from '../digest/types.ts'
import { type BrakePolicy, DEFAULT_BRAKE_POLICY } from './brake-policy.ts'
import type { Binding } from './context-types.ts'
import { DEFAULT_STRIP_HEADERS, type IdentityHeaders } from './forward.ts'
import { parseRoutes, type RouteRule } from './routes.ts'

/** Secrets: `wrangler secret put NAME`, or `.dev.vars` locally. */
export interface GateSecrets {
  NONCE_KEY?: string
  NONCE_KEY_PREVIOUS?: string
  AUTHORITY_TOKEN?: string
  ASSERTION_KEY?: string
  ADMIN_TOKEN?: string
}

/** Every variable the gate reads; all strings, as wrangler passes them. */
export interface GateVars {
  REALM?: string
  SERVER_ID?: string
  ORIGIN_URL?: string
  AUTHORITY_URL?: string
  AUTHORITY_TIMEOUT_MS?: string
  ORIGIN_TIMEOUT_MS?: string
  ALGORITHMS?: string
  QOP?: string
  USERHASH?: string
  NONCE_LIFETIME?: string
  NEXTNONCE_LEAD?: string
  REPLAY_MODE?: string
  REPLAY_WINDOW?: string
  VALIDATE_URI?: string
  IDLE_TIMEOUT?: string
  MAX_LIFETIME?: string
  REVALIDATE_AFTER?: string
  REVALIDATE_GRACE?: string
  AUTH_INT_MAX_BODY?: string
  BINDING?: string
  ROUTES?: string
  ALLOW_PATH_PARAMETERS?: string
  IDENTITY_HEADER_USER?: string
  IDENTITY_HEADER_GROUPS?: string
  IDENTITY_HEADER_ASSERTION?: string
  STRIP_HEADERS?: string
  BRAKES?: string
  BRAKE_USER_FAILURES?: string
  BRAKE_CLIENT_FAILURES?: string
  BRAKE_USER_GLOBAL_FAILURES?: string
  BRAKE_WINDOW?: string
  BRAKE_MAX_DELAY?: string
  BRAKE_AUTHORITY_PER_MINUTE?: string
  BRAKE_KNOWN_CLIENT_DAYS?: string
}

export interface GateConfig {
  realm: string
  serverId: string
  originUrl: string
  authorityUrl: string | undefined
  authorityToken: string
  authorityTimeoutMs: number
  originTimeoutMs: number
  algorithms: AlgorithmName[]
  qop: Qop[]
  userhash: boolean
  nonceLifetime: number
  nextnonceLead: number
  replay: ReplayMode
  windowSize: number
  validateUri: boolean
  idleTimeout: number
  maxLifetime: number
  revalidateAfter: number
  revalidateGrace: number
  maxAuthIntBody: number
  binding: Binding
  routes: RouteRule[]
  /** Keep `;` segment parameters (rules match without them) instead of answering 400. */
  allowPathParameters: boolean
  identityHeaders: IdentityHeaders
  /** Client headers never forwarded (beside the identity headers), lower-case. */
  stripHeaders: string[]
  nonceKeys: TokenKeys
  assertionKey: string | undefined
  adminToken: string | undefined
  brakes: boolean
  brakePolicy: BrakePolicy
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

export function readConfig(
  rawVars: Partial<Record<keyof (GateVars & GateSecrets), unknown>>,
  hasAuthorityBinding: boolean
): GateConfig {
  const vars = asStrings(rawVars)
  const nonceKey = required(vars.NONCE_KEY, 'NONCE_KEY (secret)')
  if (nonceKey.length < 16)
    throw new ConfigError('NONCE_KEY must be at least 16 characters of randomness')
  const authorityUrl = vars.AUTHORITY_URL?.trim() || undefined
  if (!authorityUrl && !hasAuthorityBinding) {
    throw new ConfigError('set AUTHORITY_URL or bind the authority as the AUTHORITY service')
  }
  if (authorityUrl) url(authorityUrl, 'AUTHORITY_URL')
  return {
    realm: required(vars.REALM, 'REALM'),
    serverId: serverId(vars.SERVER_ID ?? 'gate'),
    originUrl: url(required(vars.ORIGIN_URL, 'ORIGIN_URL'), 'ORIGIN_URL'),
    authorityUrl,
    authorityToken: required(vars.AUTHORITY_TOKEN, 'AUTHORITY_TOKEN (secret)'),
    authorityTimeoutMs: int(vars.AUTHORITY_TIMEOUT_MS, 5000, 'AUTHORITY_TIMEOUT_MS', 100),
    originTimeoutMs: int(vars.ORIGIN_TIMEOUT_MS, 30_000, 'ORIGIN_TIMEOUT_MS', 100),
    algorithms: algorithms(vars.ALGORITHMS ?? 'SHA-256,MD5'),
    qop: qop(vars.QOP ?? 'auth'),
    userhash: bool(vars.USERHASH, false, 'USERHASH'),
    nonceLifetime: int(vars.NONCE_LIFETIME, 300, 'NONCE_LIFETIME', 1),
    nextnonceLead: int(vars.NEXTNONCE_LEAD, 30, 'NEXTNONCE_LEAD', 0),
    replay: replayMode(vars.REPLAY_MODE ?? 'window'),
    windowSize: windowSize(vars.REPLAY_WINDOW),
    validateUri: bool(vars.VALIDATE_URI, true, 'VALIDATE_URI'),
    idleTimeout: int(vars.IDLE_TIMEOUT, 1800, 'IDLE_TIMEOUT', 1),
    maxLifetime: int(vars.MAX_LIFETIME, 43_200, 'MAX_LIFETIME', 1),
    revalidateAfter: int(vars.REVALIDATE_AFTER, 600, 'REVALIDATE_AFTER', 1),
    revalidateGrace: int(vars.REVALIDATE_GRACE, 3600, 'REVALIDATE_GRACE', 0),
    maxAuthIntBody: int(vars.AUTH_INT_MAX_BODY, 1024 * 1024, 'AUTH_INT_MAX_BODY', 1),
    binding: binding(vars.BINDING ?? 'none'),
    routes: routes(vars.ROUTES),
    allowPathParameters: bool(vars.ALLOW_PATH_PARAMETERS, false, 'ALLOW_PATH_PARAMETERS'),
    identityHeaders: {
      user: header(vars.IDENTITY_HEADER_USER ?? 'X-Auth-User', 'IDENTITY_HEADER_USER'),
      groups: header(vars.IDENTITY_HEADER_GROUPS ?? 'X-Auth-Groups', 'IDENTITY_HEADER_GROUPS'),
      assertion: header(
        vars.IDENTITY_HEADER_ASSERTION ?? 'X-Auth-Assertion',
        'IDENTITY_HEADER_ASSERTION'
      ),
    },
    stripHeaders:
      vars.STRIP_HEADERS === undefined
        ? DEFAULT_STRIP_HEADERS
        : list(vars.STRIP_HEADERS).map((h) => header(h, 'STRIP_HEADERS')),
    nonceKeys: {
      current: { id: keyId(nonceKey), secret: nonceKey },
      previous: vars.NONCE_KEY_PREVIOUS
        ? { id: keyId(vars.NONCE_KEY_PREVIOUS), secret: vars.NONCE_KEY_PREVIOUS }
        : undefined,
    },
    assertionKey: vars.ASSERTION_KEY || undefined,
    adminToken: adminToken(vars.ADMIN_TOKEN),
    brakes: bool(vars.BRAKES, true, 'BRAKES'),
    brakePolicy: brakePolicy(vars),
  }
}

function brakePolicy(vars: GateVars): BrakePolicy {
  const d = DEFAULT_BRAKE_POLICY
  return {
    userFailures: int(vars.BRAKE_USER_FAILURES, d.userFailures, 'BRAKE_USER_FAILURES', 1),
    clientFailures: int(vars.BRAKE_CLIENT_FAILURES, d.clientFailures, 'BRAKE_CLIENT_FAILURES', 1),
    userGlobalFailures: int(
      vars.BRAKE_USER_GLOBAL_FAILURES,
      d.userGlobalFailures,
      'BRAKE_USER_GLOBAL_FAILURES',
      1
    ),
    windowSeconds: int(vars.BRAKE_WINDOW, d.windowSeconds, 'BRAKE_WINDOW', 1),
    maxDelaySeconds: int(vars.BRAKE_MAX_DELAY, d.maxDelaySeconds, 'BRAKE_MAX_DELAY', 1),
    authorityCallsPerMinute: int(
      vars.BRAKE_AUTHORITY_PER_MINUTE,
      d.authorityCallsPerMinute,
      'BRAKE_AUTHORITY_PER_MINUTE',
      1
    ),
    knownClientSeconds:
      int(
        vars.BRAKE_KNOWN_CLIENT_DAYS,
        d.knownClientSeconds / 86_400,
        'BRAKE_KNOWN_CLIENT_DAYS',
        0
      ) * 86_400,
  }
}

/**
 * Key ids let a nonce name the key that signed it. Derived from the secret itself (FNV-1a), so a
 * rotation needs no extra variable: NONCE_KEY_PREVIOUS keeps the old nonces valid.
 */
export function keyId(secret: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < secret.length; i++) {
    h ^= secret.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h & 0xff
}

/**
 * Wrangler passes vars as strings, but a JSON-typed var (or a test binding) arrives as a number,
 * boolean or object: read every value back as the string it stands for.
 */
function asStrings(raw: Partial<Record<string, unknown>>): GateVars & GateSecrets {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === 'string') out[k] = v
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v)
    else if (
      Array.isArray(v) ||
      (typeof v === 'object' && v !== null && v.constructor === Object)
    ) {
      out[k] = JSON.stringify(v)
    }
  }
  return out
}

function required(v: string | undefined, name: string): string {
  if (v === undefined || v.trim() === '') throw new ConfigError(`${name} is required`)
  return v.trim()
}

function url(v: string, name: string): string {
  try {
    const u = new URL(v)
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error()
    return v
  } catch {
    throw new ConfigError(`${name} must be an http(s) URL, got ${JSON.stringify(v)}`)
  }
}

function int(v: string | undefined, fallback: number, name: string, min: number): number {
  if (v === undefined || v.trim() === '') return fallback
  const n = Number(v)
  if (!Number.isInteger(n) || n < min)
    throw new ConfigError(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`)
  return n
}

function bool(v: string | undefined, fallback: boolean, name: string): boolean {
  if (v === undefined || v.trim() === '') return fallback
  const s = v.trim().toLowerCase()
  if (s === 'true' || s === '1' || s === 'yes') return true
  if (s === 'false' || s === '0' || s === 'no') return false
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(v)}`)
}

function list(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

function algorithms(v: string): AlgorithmName[] {
  const out = list(v).map((token) => {
    const a = parseAlgorithmName(token)
    if (!a) throw new ConfigError(`ALGORITHMS: unknown algorithm ${JSON.stringify(token)}`)
    return a
  })
  if (out.length === 0) throw new ConfigError('ALGORITHMS must name at least one algorithm')
  return out
}

function qop(v: string): Qop[] {
  if (v.trim().toLowerCase() === 'none') return []
  return list(v).map((q) => {
    if (q !== 'auth' && q !== 'auth-int')
      throw new ConfigError(`QOP: expected auth, auth-int or none, got ${JSON.stringify(q)}`)
    return q
  })
}

function replayMode(v: string): ReplayMode {
  if (v === 'window' || v === 'strict' || v === 'off') return v
  throw new ConfigError(`REPLAY_MODE must be window, strict or off, got ${JSON.stringify(v)}`)
}

function windowSize(v: string | undefined): number {
  const n = int(v, 128, 'REPLAY_WINDOW', 64)
  if (n % 8 !== 0) throw new ConfigError(`REPLAY_WINDOW must be a multiple of 8, got ${n}`)
  return n
}

function binding(v: string): Binding {
  if (v === 'none' || v === 'address' || v === 'client-cert') return v
  throw new ConfigError(`BINDING must be none, address or client-cert, got ${JSON.stringify(v)}`)
}

/** A short admin token can be guessed: the admin endpoint revokes sessions. */
function adminToken(v: string | undefined): string | undefined {
  if (!v) return undefined
  if (v.length < 32) throw new ConfigError('ADMIN_TOKEN must be at least 32 characters')
  return v
}

function serverId(v: string): string {
  const bytes = new TextEncoder().encode(v).length
  if (bytes < 1 || bytes > 64) throw new ConfigError('SERVER_ID must be 1 to 64 bytes')
  return v
}

function header(v: string, name: string): string {
  if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(v))
    throw new ConfigError(`${name} is not a valid header name`)
  return v.toLowerCase()
}

function routes(v: string | undefined): RouteRule[] {
  try {
    return parseRoutes(v)
  } catch (err) {
    throw new ConfigError(err instanceof Error ? err.message : String(err))
  }
}
