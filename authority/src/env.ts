/**
 * The authority worker's bindings (authority/wrangler.toml). Declared here rather than taken from
 * the generated global `Env`, which describes the gate worker.
 */
export interface AuthorityEnv {
  /** User records and userhash indexes (authority/src/store.ts). */
  USERS: KVNamespace
  /** HMAC key of the gate tokens (secret: .dev.vars locally, `wrangler secret put` deployed). */
  AUTHORITY_SECRET?: string
  /** Bearer token of GET /metrics (secret); unset = no /metrics (404). */
  METRICS_TOKEN?: string
  /** Optional comma-separated list of the realms this authority answers for; unset = all. */
  ALLOWED_REALMS?: string
}

/** The realms allowed by ALLOWED_REALMS, or undefined when every realm is. */
export function allowedRealms(env: AuthorityEnv): ReadonlySet<string> | undefined {
  const realms = (env.ALLOWED_REALMS ?? '')
    .split(',')
    .map((realm) => realm.trim())
    .filter((realm) => realm.length > 0)
  return realms.length === 0 ? undefined : new Set(realms)
}
