/**
 * The gate worker's configuration: wrangler.toml vars and secrets read into digestAuth()'s
 * options, the brakes' policy, the authority client's and the forwarding's settings — directly,
 * through one table per target, with no default of its own (an unset variable leaves the option
 * to DEFAULTS). A bad value is reported by name, so a deploy with a typo fails loudly and clearly.
 */
import { parseAlgorithmName } from '../digest/algorithms.ts'
import type { TokenKeys } from '../digest/tokens.ts'
import type { AlgorithmName, Qop } from '../digest/types.ts'
import {
  type PublishedKey,
  publishedKeys,
  readAssertionKey,
  readPublishedKey,
} from './assertion-keys.ts'
import type { BrakePolicy } from './brake-policy.ts'
import { ConfigError } from './config-error.ts'
import type { LogLevel } from './decision-log.ts'
import type { ForwardOptions } from './forward.ts'
import { DEFAULTS, type DigestAuthOptions } from './options.ts'
import { parseRoutes, type RouteRule } from './routes.ts'

/** Secrets: `wrangler secret put NAME`, or `.dev.vars` locally. */
export interface GateSecrets {
  NONCE_KEY?: string
  NONCE_KEY_PREVIOUS?: string
  AUTHORITY_TOKEN?: string
  ASSERTION_KEY?: string
  ASSERTION_KEY_PREVIOUS?: string
  ADMIN_TOKEN?: string
}

type Parse<T> = (value: string, name: string) => T

/** digestAuth() options read from variables. */
const AUTH_VARS = {
  SERVER_ID: ['serverId', serverId],
  ALGORITHMS: ['algorithms', algorithms],
  QOP: ['qop', qop],
  USERHASH: ['userhash', bool],
  NONCE_LIFETIME: ['nonceLifetime', int(1)],
  NEXTNONCE_LEAD: ['nextnonceLead', int(0)],
  REPLAY_MODE: ['replay', oneOf(['window', 'strict', 'off'])],
  REPLAY_WINDOW: ['windowSize', windowSize],
  VALIDATE_URI: ['validateUri', bool],
  IDLE_TIMEOUT: ['idleTimeout', int(1)],
  MAX_LIFETIME: ['maxLifetime', int(1)],
  REVALIDATE_AFTER: ['revalidateAfter', int(1)],
  REVALIDATE_GRACE: ['revalidateGrace', int(0)],
  AUTH_INT_MAX_BODY: ['maxAuthIntBody', int(1)],
  CONTEXT_RELEASE_AFTER: ['contextReleaseAfter', secondsOrOff(2)],
  BINDING: ['binding', oneOf(['none', 'address', 'client-cert'])],
  LOG_LEVEL: ['logLevel', oneOf(['all', 'logins', 'denials', 'off'])],
} as const satisfies Record<string, readonly [keyof DigestAuthOptions, Parse<unknown>]>

/** The brakes' policy read from variables. */
const BRAKE_VARS = {
  BRAKE_USER_FAILURES: ['userFailures', int(1)],
  BRAKE_CLIENT_FAILURES: ['clientFailures', int(1)],
  BRAKE_USER_GLOBAL_FAILURES: ['userGlobalFailures', int(1)],
  BRAKE_WINDOW: ['windowSeconds', int(1)],
  BRAKE_MAX_DELAY: ['maxDelaySeconds', int(1)],
  BRAKE_AUTHORITY_PER_MINUTE: ['authorityCallsPerMinute', int(1)],
  BRAKE_KNOWN_CLIENT_DAYS: ['knownClientSeconds', (v, name) => int(0)(v, name) * 86_400],
} as const satisfies Record<string, readonly [keyof BrakePolicy, Parse<number>]>

/** Every variable the gate reads; all strings, as wrangler passes them. */
export type GateVars = Partial<
  Record<
    | keyof typeof AUTH_VARS
    | keyof typeof BRAKE_VARS
    | 'REALM'
    | 'ORIGIN_URL'
    | 'ORIGIN_TIMEOUT_MS'
    | 'AUTHORITY_URL'
    | 'AUTHORITY_TIMEOUT_MS'
    | 'IDENTITY_HEADER_USER'
    | 'IDENTITY_HEADER_GROUPS'
    | 'IDENTITY_HEADER_ASSERTION'
    | 'ASSERTION_AUDIENCE'
    | 'STRIP_HEADERS'
    | 'ALLOW_PATH_PARAMETERS'
    | 'ROUTES'
    | 'BRAKES'
    | 'CONSOLE_GROUP',
    string
  >
>

/** What the worker needs besides its bindings: it adds the stores and the authority client. */
export interface GateConfig {
  auth: Omit<DigestAuthOptions, 'users' | 'authority' | 'contexts' | 'brakes'> & {
    nonceKeys: TokenKeys
  }
  /** The brakes' policy as configured (DEFAULTS fill the rest), or off. */
  brakes: { policy: Partial<BrakePolicy> } | false
  authority: { url: string | undefined; token: string; timeoutMs: number }
  forward: ForwardOptions
  /** The assertion's public keys (current and previous), published at JWKS_PATH. */
  publishedKeys: PublishedKey[]
  routes: RouteRule[]
  /** Keep `;` segment parameters (rules match the path without them) instead of answering 400. */
  allowPathParameters: boolean
  adminToken: string | undefined
  /** Members of this group may use the operator's console; undefined = no console. */
  consoleGroup: string | undefined
}

export { ConfigError }

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
  const realm = required(vars.REALM, 'REALM')
  const auth = {
    ...fromTable(vars as Record<string, string | undefined>, AUTH_VARS),
    realm,
    nonceKeys: {
      current: { id: keyId(nonceKey), secret: nonceKey },
      previous: vars.NONCE_KEY_PREVIOUS
        ? { id: keyId(vars.NONCE_KEY_PREVIOUS), secret: vars.NONCE_KEY_PREVIOUS }
        : undefined,
    },
  } as GateConfig['auth']
  const identity = DEFAULTS.worker.identityHeaders
  const optionalHeader = (name: keyof GateVars, fallback: string) => {
    const v = present(vars[name])
    return v === undefined ? fallback : header(v, name)
  }
  const strip = present(vars.STRIP_HEADERS)
  const assertionKey = vars.ASSERTION_KEY
    ? readAssertionKey(vars.ASSERTION_KEY, 'ASSERTION_KEY')
    : undefined
  return {
    auth,
    brakes:
      (optional(vars.BRAKES, bool, 'BRAKES') ?? DEFAULTS.worker.brakes)
        ? { policy: fromTable(vars as Record<string, string | undefined>, BRAKE_VARS) }
        : false,
    authority: {
      url: authorityUrl,
      token: required(vars.AUTHORITY_TOKEN, 'AUTHORITY_TOKEN (secret)'),
      timeoutMs:
        optional(vars.AUTHORITY_TIMEOUT_MS, int(100), 'AUTHORITY_TIMEOUT_MS') ??
        DEFAULTS.worker.authorityTimeoutMs,
    },
    forward: {
      origin: url(required(vars.ORIGIN_URL, 'ORIGIN_URL'), 'ORIGIN_URL'),
      timeoutMs:
        optional(vars.ORIGIN_TIMEOUT_MS, int(100), 'ORIGIN_TIMEOUT_MS') ??
        DEFAULTS.worker.originTimeoutMs,
      headers: {
        user: optionalHeader('IDENTITY_HEADER_USER', identity.user),
        groups: optionalHeader('IDENTITY_HEADER_GROUPS', identity.groups),
        assertion: optionalHeader('IDENTITY_HEADER_ASSERTION', identity.assertion),
      },
      // Blank keeps the default list (a typo must not disable it); `none` strips nothing extra.
      stripHeaders:
        strip === undefined
          ? [...DEFAULTS.worker.stripHeaders]
          : strip.toLowerCase() === 'none'
            ? []
            : list(strip).map((h) => header(h, 'STRIP_HEADERS')),
      logLevel: (auth.logLevel ?? DEFAULTS.logLevel) as LogLevel,
      assertionKey,
      assertionAudience: present(vars.ASSERTION_AUDIENCE),
      issuer: auth.serverId ?? DEFAULTS.serverId,
      realm,
    },
    publishedKeys: publishedKeys(
      assertionKey,
      optional(vars.ASSERTION_KEY_PREVIOUS, readPublishedKey, 'ASSERTION_KEY_PREVIOUS')
    ),
    routes: routes(vars.ROUTES),
    allowPathParameters:
      optional(vars.ALLOW_PATH_PARAMETERS, bool, 'ALLOW_PATH_PARAMETERS') ??
      DEFAULTS.worker.allowPathParameters,
    adminToken: adminToken(vars.ADMIN_TOKEN),
    consoleGroup: present(vars.CONSOLE_GROUP) ?? DEFAULTS.worker.consoleGroup,
  }
}

/**
 * Each variable's default as text, derived from DEFAULTS: what the README's configuration table
 * must say (a test holds it to that).
 */
export function variableDefaults(): Record<string, string> {
  // Unset by default: the table says `—`.
  const text = (v: unknown) => (v === undefined ? '—' : Array.isArray(v) ? v.join(',') : String(v))
  const out: Record<string, string> = {}
  for (const [name, [key]] of Object.entries(AUTH_VARS)) {
    if (key in DEFAULTS) out[name] = text(DEFAULTS[key as keyof typeof DEFAULTS])
  }
  // Its variable spells `false` as `off`.
  if (DEFAULTS.contextReleaseAfter === false) out.CONTEXT_RELEASE_AFTER = 'off'
  for (const [name, [key]] of Object.entries(BRAKE_VARS)) {
    const value = DEFAULTS.brakePolicy[key]
    out[name] = text(key === 'knownClientSeconds' ? value / 86_400 : value)
  }
  const w = DEFAULTS.worker
  return {
    ...out,
    AUTHORITY_TIMEOUT_MS: text(w.authorityTimeoutMs),
    ORIGIN_TIMEOUT_MS: text(w.originTimeoutMs),
    IDENTITY_HEADER_USER: w.identityHeaders.user,
    IDENTITY_HEADER_GROUPS: w.identityHeaders.groups,
    IDENTITY_HEADER_ASSERTION: w.identityHeaders.assertion,
    STRIP_HEADERS: text(w.stripHeaders),
    ALLOW_PATH_PARAMETERS: text(w.allowPathParameters),
    BRAKES: text(w.brakes),
    CONSOLE_GROUP: text(w.consoleGroup),
  }
}

/** The options a table names, each parsed from its variable where that is set. */
function fromTable<T extends Record<string, readonly [string, Parse<unknown>]>>(
  vars: Record<string, string | undefined>,
  table: T
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, [key, parse]] of Object.entries(table)) {
    const value = optional(vars[name], parse, name)
    if (value !== undefined) out[key] = value
  }
  return out
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

/** A variable's value unless it is unset or blank. */
function present(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim()
}

function optional<T>(v: string | undefined, parse: Parse<T>, name: string): T | undefined {
  const value = present(v)
  return value === undefined ? undefined : parse(value, name)
}

function required(v: string | undefined, name: string): string {
  const value = present(v)
  if (value === undefined) throw new ConfigError(`${name} is required`)
  return value
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

/** Seconds (an integer >= min), or `off`. */
function secondsOrOff(min: number): Parse<number | false> {
  return (v, name) => {
    const n = Number(v)
    if (v === 'off') return false
    if (!Number.isInteger(n) || n < min) {
      throw new ConfigError(`${name} must be off or an integer >= ${min}, got ${JSON.stringify(v)}`)
    }
    return n
  }
}

function int(min: number): Parse<number> {
  return (v, name) => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < min) {
      throw new ConfigError(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`)
    }
    return n
  }
}

function bool(v: string, name: string): boolean {
  const s = v.toLowerCase()
  if (s === 'true' || s === '1' || s === 'yes') return true
  if (s === 'false' || s === '0' || s === 'no') return false
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(v)}`)
}

function oneOf<T extends string>(values: readonly T[]): Parse<T> {
  return (v, name) => {
    if ((values as readonly string[]).includes(v)) return v as T
    throw new ConfigError(`${name} must be ${values.join(', ')}, got ${JSON.stringify(v)}`)
  }
}

function list(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

function algorithms(v: string, name: string): AlgorithmName[] {
  const out = list(v).map((token) => {
    const a = parseAlgorithmName(token)
    if (!a) throw new ConfigError(`${name}: unknown algorithm ${JSON.stringify(token)}`)
    return a
  })
  if (out.length === 0) throw new ConfigError(`${name} must name at least one algorithm`)
  return out
}

function qop(v: string, name: string): Qop[] {
  if (v.toLowerCase() === 'none') return []
  return list(v).map((q) => {
    if (q !== 'auth' && q !== 'auth-int') {
      throw new ConfigError(`${name}: expected auth, auth-int or none, got ${JSON.stringify(q)}`)
    }
    return q
  })
}

function windowSize(v: string, name: string): number {
  const n = int(64)(v, name)
  if (n % 8 !== 0) throw new ConfigError(`${name} must be a multiple of 8, got ${n}`)
  return n
}

/** A short admin token can be guessed: the admin endpoint revokes sessions. */
function adminToken(v: string | undefined): string | undefined {
  if (!v) return undefined
  if (v.length < 32) throw new ConfigError('ADMIN_TOKEN must be at least 32 characters')
  // What a Bearer header can carry (RFC 6750 b64token): any other token (a space, a trailing
  // newline from `echo`) is refused by every request, so the endpoint would be there but unusable.
  if (!/^[A-Za-z0-9._~+/-]+=*$/.test(v)) {
    throw new ConfigError('ADMIN_TOKEN may hold only letters, digits and - . _ ~ + / (then =)')
  }
  return v
}

function serverId(v: string, name: string): string {
  const bytes = new TextEncoder().encode(v).length
  if (bytes < 1 || bytes > 64) throw new ConfigError(`${name} must be 1 to 64 bytes`)
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
