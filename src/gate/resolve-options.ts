/**
 * digestAuth() options made whole, once, when the middleware is built: DEFAULTS applied, the
 * simple form's parts supplied (local authority, memory stores, a random nonce key), everything
 * that could not work refused with a clear error, and the settings every request needs derived.
 */
import type { Context } from 'hono'
import type { TokenKeys } from '../digest/tokens.ts'
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
  if (o.algorithms.length === 0) fail('at least one algorithm is required')
  if (!(o.windowSize >= 64 && o.windowSize % 8 === 0)) {
    fail('windowSize must be a multiple of 8, at least 64')
  }
  for (const n of [
    'nonceLifetime',
    'idleTimeout',
    'maxLifetime',
    'revalidateAfter',
    'maxAuthIntBody',
  ] as const) {
    if (!(o[n] > 0)) fail(`${n} must be a positive number`)
  }
  if (!(o.nextnonceLead >= 0)) fail('nextnonceLead must be >= 0')
  if (!(o.revalidateGrace >= 0)) fail('revalidateGrace must be >= 0')
  if (o.contextReleaseAfter !== false && !(o.contextReleaseAfter >= 2)) {
    fail('contextReleaseAfter must be false or a number >= 2')
  }
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
