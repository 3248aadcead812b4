/**
 * The `token` command's decisions, apart from the CLI so they can be tested on their own: how
 * long a token lives, which AUTHORITY_SECRET signs it, and what the admin is told about it.
 */
import type { GateTokenClaims } from '../../src/authority-protocol/token.ts'
import { CliError } from './errors.ts'

/** Lifetime of a minted token when --expires is not given. */
export const DEFAULT_TOKEN_LIFETIME = '365d'

const UNIT_SECONDS: Readonly<Record<string, number>> = {
  s: 1,
  m: 60,
  h: 3600,
  d: 86_400,
  w: 7 * 86_400,
  y: 365 * 86_400,
}

/**
 * Seconds in a duration such as `90d`, `12h`, `2w`, `1y` (a whole number of one unit among s, m,
 * h, d, w, y = 365 days), or undefined for anything else. Six digits at most keep it exact.
 */
export function parseDuration(text: string): number | undefined {
  const match = /^([1-9][0-9]{0,5})([smhdwy])$/.exec(text)
  if (match === null) return undefined
  return Number(match[1]) * (UNIT_SECONDS[match[2] as string] as number)
}

export interface TokenSecret {
  secret: string
  /** Where it came from, for stderr. */
  note: string
}

/**
 * The secret to sign with. With --remote (a token for the deployed authority) only the
 * environment counts: the local authority/.dev.vars holds another secret, and a token signed with
 * it would be refused by the deployed authority long after it was handed out.
 */
export function chooseTokenSecret(options: {
  remote: boolean
  fromEnvironment: string | undefined
  readLocal: () => string | undefined
  localFile: string
}): TokenSecret {
  const fromEnvironment = options.fromEnvironment ?? ''
  if (options.remote) {
    if (fromEnvironment === '') {
      throw new CliError(
        `with --remote, set AUTHORITY_SECRET in the environment to the deployed authority's secret (${options.localFile} holds the local one and is not used)`
      )
    }
    return { secret: fromEnvironment, note: 'signed with AUTHORITY_SECRET from the environment' }
  }
  if (fromEnvironment !== '') {
    return { secret: fromEnvironment, note: 'signed with AUTHORITY_SECRET from the environment' }
  }
  const local = options.readLocal() ?? ''
  if (local === '' || local.startsWith('replace-with')) {
    throw new CliError(
      `no AUTHORITY_SECRET in the environment or ${options.localFile} (npm start creates the local one; for a deployed authority use --remote with AUTHORITY_SECRET set)`
    )
  }
  return {
    secret: local,
    note: `signed with the local authority's secret from ${options.localFile}: this token works with the local authority only (for a deployed one: --remote with AUTHORITY_SECRET set)`,
  }
}

/** One stderr line: what the token grants and until when. */
export function describeToken(claims: GateTokenClaims, now: number, defaulted: boolean): string {
  const days = Math.round(((claims.expiresAt - now) / 86_400) * 10) / 10
  const when = new Date(claims.expiresAt * 1000).toISOString()
  const lifetime = defaulted ? `, the default: --expires to choose` : ''
  return `token for ${claims.serverId}, realm${claims.realms.length > 1 ? 's' : ''} ${claims.realms.join(', ')}; expires ${when} (in ${days} days${lifetime})`
}
