/**
 * The gate configurations the e2e suite runs, one gate process each (same authority, origin and
 * users). Each is a column of the interop matrix (docs/interop.md).
 */
export const GATE_VARIANTS = {
  /** wrangler.toml as shipped: SHA-256 and MD5 challenges, SHA-256 first. */
  default: {},
  /** The default's algorithms the other way round: known clients get their own order anyway. */
  'MD5,SHA-256': { ALGORITHMS: 'MD5,SHA-256' },
  'SHA-256': { ALGORITHMS: 'SHA-256' },
  MD5: { ALGORITHMS: 'MD5' },
  'SHA-256-sess': { ALGORITHMS: 'SHA-256-sess' },
  'MD5-sess': { ALGORITHMS: 'MD5-sess' },
  'SHA-512-256': { ALGORITHMS: 'SHA-512-256' },
  /** The default challenges plus userhash=true. */
  userhash: { USERHASH: 'true' },
} as const satisfies Record<string, Record<string, string>>

export type GateVariant = keyof typeof GATE_VARIANTS

/**
 * The shared gates serve every client suite from one machine: hundreds of deliberate wrong
 * answers (each client's wrong-password case, each configuration a client cannot compute, the
 * hostile storms) from a handful of addresses and three users. The brakes would rightly slow
 * those down and the interop results would measure the brakes; their own suite
 * (brakes.e2e.test.ts) runs a gate with the documented defaults.
 */
export const SHARED_GATE_VARS: Record<string, string> = {
  BRAKE_USER_FAILURES: '100000',
  BRAKE_CLIENT_FAILURES: '100000',
  BRAKE_USER_GLOBAL_FAILURES: '100000',
  BRAKE_AUTHORITY_PER_MINUTE: '100000',
}

export const VARIANT_NAMES = Object.keys(GATE_VARIANTS) as GateVariant[]

/** Column headings of the interop matrix. */
export const VARIANT_LABELS: Record<GateVariant, string> = {
  default: 'SHA-256, MD5 (default)',
  'MD5,SHA-256': 'MD5, SHA-256',
  'SHA-256': 'SHA-256',
  MD5: 'MD5',
  'SHA-256-sess': 'SHA-256-sess',
  'MD5-sess': 'MD5-sess',
  'SHA-512-256': 'SHA-512-256',
  userhash: 'userhash=true',
}
