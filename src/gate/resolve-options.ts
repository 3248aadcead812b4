/** digestAuth() options with defaults applied and the derived settings every request needs. */
import type { Context } from 'hono'
import { type BrakePolicy, DEFAULT_BRAKE_POLICY } from './brake-policy.ts'
import type { ChallengeSettings } from './challenge.ts'
import type { ContextPolicy } from './context-types.ts'
import { logDecision } from './decision-log.ts'
import { DEFAULTS, type DigestAuthOptions } from './options.ts'

type Defaulted = Required<
  Omit<
    DigestAuthOptions,
    'onAuthSuccess' | 'clientIp' | 'unauthorizedMessage' | 'invalidRequestMessage' | 'brakes'
  >
> &
  Pick<DigestAuthOptions, 'onAuthSuccess' | 'unauthorizedMessage' | 'invalidRequestMessage'>

export type ResolvedOptions = Defaulted & {
  brakes: Exclude<DigestAuthOptions['brakes'], undefined>
  clientIp: (c: Context) => string
  settings: ChallengeSettings
  policy: ContextPolicy
  brakePolicy: BrakePolicy
}

/** Apply defaults and refuse a configuration that could not work, at construction time. */
export function resolveOptions(options: DigestAuthOptions): ResolvedOptions {
  const o = {
    algorithms: DEFAULTS.algorithms,
    qop: DEFAULTS.qop,
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
    binding: DEFAULTS.binding,
    onDecision: logDecision,
    ...stripUndefined(options),
  } as Defaulted
  if (!o.realm) throw new Error('digestAuth: realm is required')
  if (!o.serverId) throw new Error('digestAuth: serverId is required')
  if (!(o.revalidateGrace >= 0)) throw new Error('digestAuth: revalidateGrace must be >= 0')
  if (o.algorithms.length === 0) throw new Error('digestAuth: at least one algorithm is required')
  if (!(o.windowSize >= 64 && o.windowSize % 8 === 0)) {
    throw new Error('digestAuth: windowSize must be a multiple of 8, at least 64')
  }
  for (const n of [
    'nonceLifetime',
    'idleTimeout',
    'maxLifetime',
    'revalidateAfter',
    'maxAuthIntBody',
  ] as const) {
    if (!(o[n] > 0)) throw new Error(`digestAuth: ${n} must be a positive number`)
  }
  const brakes = options.brakes ?? false
  return {
    ...o,
    brakes,
    clientIp: options.clientIp ?? defaultClientIp,
    settings: {
      realm: o.realm,
      serverId: o.serverId,
      algorithms: o.algorithms,
      qop: o.qop,
      userhash: o.userhash,
    },
    policy: {
      replay: o.replay,
      windowSize: o.windowSize,
      nonceLifetime: o.nonceLifetime,
      idleTimeout: o.idleTimeout,
      maxLifetime: o.maxLifetime,
      revalidateAfter: o.revalidateAfter,
      brakes: brakes !== false,
      freeMismatches: brakes ? DEFAULTS.freeMismatchesWithBrakes : DEFAULTS.maxContextFailures,
    },
    brakePolicy: brakePolicy(brakes ? brakes.policy : undefined),
  }
}

/** The defaults with the given values; a policy that could not work is refused here. */
function brakePolicy(given: Partial<BrakePolicy> | undefined): BrakePolicy {
  const p = { ...DEFAULT_BRAKE_POLICY, ...stripUndefined(given ?? {}) }
  for (const [name, value] of Object.entries(p)) {
    const min = name === 'knownClientSeconds' ? 0 : 1
    if (!(Number.isFinite(value) && value >= min)) {
      throw new Error(`digestAuth: brakes.policy.${name} must be a number >= ${min}`)
    }
  }
  return p
}

/** Cloudflare sets CF-Connecting-IP; elsewhere a proxy's X-Real-IP. */
function defaultClientIp(c: Context): string {
  return c.req.header('cf-connecting-ip') ?? c.req.header('x-real-ip') ?? 'unknown'
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
