/**
 * digestAuth() options made whole, once, when the middleware is built: DEFAULTS applied, the
 * simple form's parts supplied (local authority, memory stores, a random nonce key), everything
 * that could not work refused with a clear error, and the settings every request needs derived.
 */
import type { Context } from 'hono'
import { ALGORITHMS } from '../digest/algorithms.ts'
import { hasForbiddenInQuoted } from '../digest/auth-params.ts'
import { MAX_SERVER_ID_BYTES, type TokenKeys } from '../digest/tokens.ts'
import type { AuthorityClient } from './authority-client.ts'
import type { BrakePolicy, BrakeStore } from './brake-policy.ts'
import type { ContextPolicy, ContextStore } from './context-types.ts'
import { decisionLogger } from './decision-log.ts'
import { localAuthority } from './local-authority.ts'
import { memoryBrakes } from './memory-brakes.ts'
import { memoryContexts } from './memory-contexts.ts'
import { DEFAULTS, type DigestAuthOptions } from './options.ts'

type Given = Omit<DigestAuthOptions, 'users' | 'authority' | 'brakes'>

export type ResolvedOptions = Required<
  Omit<
    Given,
    | 'onAuthSuccess'
    | 'authorize'
    | 'unauthorizedMessage'
    | 'invalidRequestMessage'
    | 'nonceKeys'
    | 'contexts'
    | 'clientIp'
  >
> &
  Pick<Given, 'onAuthSuccess' | 'authorize' | 'unauthorizedMessage' | 'invalidRequestMessage'> & {
    nonceKeys: TokenKeys
    authority: AuthorityClient
    contexts: ContextStore
    brakes: { store: BrakeStore } | false
    brakePolicy: BrakePolicy
    clientIp: (c: Context) => string
    policy: ContextPolicy
  }

/** Apply DEFAULTS and refuse a configuration that could not work, at construction time. */
export function resolveOptions(options: DigestAuthOptions): ResolvedOptions {
  const given = stripUndefined(options)
  const o = {
    serverId: DEFAULTS.serverId,
    algorithms: [...DEFAULTS.algorithms],
    qop: [...DEFAULTS.qop],
    userhash: DEFAULTS.userhash,
    nonceLifetime: DEFAULTS.nonceLifetime,
    nextnonceLead: DEFAULTS.nextnonceLead,
    replay: DEFAULTS.replay,
    windowSize: DEFAULTS.windowSize,
    validateUri: DEFAULTS.validateUri,
    idleTimeout: DEFAULTS.idleTimeout,
    maxLifetime: DEFAULTS.maxLifetime,
    revalidateAfter: DEFAULTS.revalidateAfter,
    revalidateGrace: DEFAULTS.revalidateGrace,
    maxAuthIntBody: DEFAULTS.maxAuthIntBody,
    contextReleaseAfter: DEFAULTS.contextReleaseAfter,
    binding: DEFAULTS.binding,
    passPreflights: DEFAULTS.passPreflights,
    logLevel: DEFAULTS.logLevel,
    ...given,
  }
  const fail = (message: string): never => {
    throw new TypeError(`digestAuth: ${message}`)
  }
  if (!o.realm) fail('realm is required')
  // Sent in every WWW-Authenticate: a control character (CR LF) or a character no header can
  // carry would make every challenge throw, at the first request instead of here.
  if (typeof o.realm !== 'string' || !isHeaderText(o.realm)) {
    fail('realm must be header text: no control characters, nothing above U+00FF')
  }
  if (o.algorithms.length === 0) fail('at least one algorithm is required')
  for (const a of o.algorithms) {
    if (!ALGORITHMS.includes(a)) fail(`unknown algorithm ${JSON.stringify(a)}`)
  }
  for (const q of o.qop) {
    if (q !== 'auth' && q !== 'auth-int')
      fail(`qop must be auth or auth-int, not ${JSON.stringify(q)}`)
  }
  // A -sess key hashes the cnonce, which only a qop answer carries: no client could answer.
  if (o.qop.length === 0 && o.algorithms.some((a) => a.endsWith('-sess'))) {
    fail('a -sess algorithm needs qop (auth or auth-int)')
  }
  if (!['window', 'strict', 'off'].includes(o.replay)) fail('replay must be window, strict or off')
  const serverIdBytes = new TextEncoder().encode(o.serverId).length
  if (serverIdBytes < 1 || serverIdBytes > MAX_SERVER_ID_BYTES) {
    fail(`serverId must be 1-${MAX_SERVER_ID_BYTES} bytes`)
  }
  // Each nonce holds windowSize bits, copied on every request: bounded to keep that small.
  const w = o.windowSize
  if (!(Number.isInteger(w) && w >= 64 && w <= MAX_WINDOW_SIZE && w % 8 === 0)) {
    fail(`windowSize must be a multiple of 8, 64 to ${MAX_WINDOW_SIZE}`)
  }
  // Whole seconds that fit the nonce's 32-bit clock: Infinity or NaN would be stored as null.
  const seconds = (n: keyof typeof o, min: number) => {
    const v = o[n]
    if (!(Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= MAX_SECONDS)) {
      fail(`${n} must be a whole number of seconds, ${min} to ${MAX_SECONDS}`)
    }
  }
  for (const n of ['nonceLifetime', 'idleTimeout', 'maxLifetime', 'revalidateAfter'] as const) {
    seconds(n, 1)
  }
  seconds('nextnonceLead', 0)
  seconds('revalidateGrace', 0)
  if (!(Number.isSafeInteger(o.maxAuthIntBody) && o.maxAuthIntBody > 0)) {
    fail('maxAuthIntBody must be a positive whole number of bytes')
  }
  if (o.contextReleaseAfter !== false) seconds('contextReleaseAfter', 2)
  if (options.nonceKeys !== undefined) checkNonceKeys(options.nonceKeys, fail)
  const hasUsers = options.users !== undefined
  if (hasUsers === (options.authority !== undefined)) fail('give either users or an authority')
  if (hasUsers && typeof options.users === 'function' && o.userhash) {
    fail('userhash needs users as a record (a hashed name cannot be looked up by a function)')
  }
  const brakes =
    options.brakes === false ? false : { store: options.brakes?.store ?? memoryBrakes() }
  return {
    ...o,
    onDecision: options.onDecision ?? decisionLogger(o.logLevel),
    nonceKeys: options.nonceKeys ?? randomKeys(),
    authority:
      options.authority ?? localAuthority(options.users as NonNullable<typeof options.users>),
    contexts: options.contexts ?? memoryContexts(),
    brakes,
    brakePolicy: brakePolicy(options.brakes ? options.brakes.policy : undefined),
    clientIp: options.clientIp ?? defaultClientIp,
    policy: {
      replay: o.replay,
      windowSize: o.windowSize,
      nonceLifetime: o.nonceLifetime,
      idleTimeout: o.idleTimeout,
      maxLifetime: o.maxLifetime,
      revalidateAfter: o.revalidateAfter,
      brakes: brakes !== false,
      freeMismatches: brakes ? DEFAULTS.freeMismatchesWithBrakes : DEFAULTS.maxContextFailures,
      releaseAfter: o.contextReleaseAfter,
    },
  }
}

/** The defaults with the given values; a policy that could not work is refused here. */
function brakePolicy(given: Partial<BrakePolicy> | undefined): BrakePolicy {
  const p = { ...DEFAULTS.brakePolicy, ...stripUndefined(given ?? {}) }
  for (const [name, value] of Object.entries(p)) {
    const min = name === 'knownClientSeconds' ? 0 : 1
    if (!(Number.isFinite(value) && value >= min)) {
      throw new TypeError(`digestAuth: brakes.policy.${name} must be a number >= ${min}`)
    }
  }
  return p
}

/** Quotable (no control character) and within Latin-1, which is what a header value carries. */
function isHeaderText(text: string): boolean {
  return !hasForbiddenInQuoted(text) && !/[\u0100-\uffff]/.test(text)
}

/** Each nc window's bits, at most (8 KB per nonce). */
const MAX_WINDOW_SIZE = 65_536

/** The nonce's clock is 32-bit Unix seconds: no span longer than it counts. */
const MAX_SECONDS = 0xffffffff

/** What the minter would refuse at the first request, refused now; and a short secret too. */
function checkNonceKeys(keys: TokenKeys, fail: (message: string) => never): void {
  for (const [which, key] of [
    ['current', keys.current],
    ['previous', keys.previous],
  ] as const) {
    if (key === undefined && which === 'previous') continue
    if (typeof key !== 'object' || key === null) fail(`nonceKeys.${which} is required`)
    if (!(Number.isInteger(key.id) && key.id >= 0 && key.id <= 255)) {
      fail(`nonceKeys.${which}.id must be an integer 0-255`)
    }
    // As the gate worker's NONCE_KEY: a short secret lets nonces and opaques be forged offline.
    if (typeof key.secret !== 'string' || key.secret.length < MIN_SECRET_LENGTH) {
      fail(
        `nonceKeys.${which}.secret must be at least ${MIN_SECRET_LENGTH} characters of randomness`
      )
    }
  }
}

const MIN_SECRET_LENGTH = 16

/** A key for this middleware alone: 32 random bytes. */
function randomKeys(): TokenKeys {
  const bytes = crypto.getRandomValues(new Uint8Array(32))
  return { current: { id: bytes[0] as number, secret: btoa(String.fromCharCode(...bytes)) } }
}

/** Cloudflare sets CF-Connecting-IP; elsewhere a proxy's X-Real-IP. */
function defaultClientIp(c: Context): string {
  return c.req.header('cf-connecting-ip') ?? c.req.header('x-real-ip') ?? 'unknown'
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}
