/**
 * Local secrets for the stack: generated on first start, kept afterwards, never committed.
 *   authority/.dev.vars  AUTHORITY_SECRET, METRICS_TOKEN
 *   .dev.vars            NONCE_KEY, ASSERTION_KEY (a P-256 private JWK), ADMIN_TOKEN, AUTHORITY_TOKEN
 * AUTHORITY_TOKEN is minted from AUTHORITY_SECRET for the gate's SERVER_ID and the local realm, so
 * it is re-minted whenever it no longer verifies for them: another secret (authority/.dev.vars
 * deleted), an outdated token format (an older checkout), or an expiry drawing near. An
 * ASSERTION_KEY that is not a private JWK (the HS256 secret of an older checkout) is replaced, so
 * that the demo origin can verify the assertion with the gate's published key.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { DEFAULT_REALM } from '../../authority/src/store.ts'
import { mintGateToken, verifyGateToken } from '../../src/authority-protocol/token.ts'
import { readAssertionKey } from '../../src/gate/assertion-keys.ts'

export interface SecretFiles {
  /** The gate's dotenv file (wrangler dev reads `.dev.vars` beside wrangler.toml). */
  gate: string
  /** The authority's dotenv file. */
  authority: string
}

/** The gate's generated secrets: whether a value will do, and how to make a new one. */
const GATE_SECRETS: Record<
  string,
  { fits: (value: string | undefined) => boolean; make: () => string }
> = {
  NONCE_KEY: { fits: (v) => !isPlaceholder(v), make: randomSecret },
  ASSERTION_KEY: { fits: isAssertionJwk, make: assertionJwk },
  ADMIN_TOKEN: { fits: (v) => !isPlaceholder(v), make: randomSecret },
}

const DAY = 86_400
/** The local gate token lives ten years: a checkout should not stop working on its own. */
export const LOCAL_TOKEN_LIFETIME = 3650 * DAY
/** A local token with less than this left is replaced at the next start. */
export const LOCAL_TOKEN_RENEWAL = 30 * DAY

/** 32 random bytes, base64url without padding. */
export function randomSecret(): string {
  return randomBytes(32).toString('base64url')
}

/** A new EC P-256 private JWK: the gate signs ES256 with it and publishes its public half. */
export function assertionJwk(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return JSON.stringify(privateKey.export({ format: 'jwk' }))
}

/** Whether the gate signs with `value` and publishes its public half (not HS256, not invalid). */
function isAssertionJwk(value: string | undefined): boolean {
  if (value === undefined) return false
  try {
    return readAssertionKey(value, 'ASSERTION_KEY').alg !== 'HS256'
  } catch {
    return false
  }
}

/** A dotenv file's values (Node's own parser, as `node --env-file` reads); none if it is missing. */
export function readDotenv(file: string): Map<string, string> {
  if (!existsSync(file)) return new Map()
  return new Map(Object.entries(parseEnv(readFileSync(file, 'utf8')) as Record<string, string>))
}

/**
 * Sets `updates` in a dotenv file: replaces existing lines, appends new ones, keeps the rest
 * (comments included). Node has a dotenv parser but no writer. Values are quoted: the secrets
 * written here are base64url, tokens and JWKs, which hold no newline and no single quote; a value
 * holding double quotes (a JWK's JSON) is single-quoted, which dotenv parsers read literally.
 */
function writeDotenv(file: string, updates: Map<string, string>, header: string): void {
  const original = existsSync(file) ? readFileSync(file, 'utf8') : ''
  const pending = new Map(updates)
  const lines = original === '' ? [header] : original.replace(/\n$/, '').split('\n')
  const updated = lines.map((line) => {
    const key = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=/.exec(line)?.[1]
    if (key === undefined || !pending.has(key)) return line
    const value = pending.get(key) as string
    pending.delete(key)
    return `${key}=${quoted(value)}`
  })
  for (const [key, value] of pending) updated.push(`${key}=${quoted(value)}`)
  writeFileSync(file, `${updated.join('\n')}\n`, { mode: 0o600 })
  chmodSync(file, 0o600)
}

function quoted(value: string): string {
  return value.includes('"') ? `'${value}'` : `"${value}"`
}

/** Missing, empty, or still the text of .dev.vars.example ("replace-with-…"). */
function isPlaceholder(value: string | undefined): boolean {
  return value === undefined || value === '' || value.startsWith('replace-with')
}

/** Whether `token` verifies under `secret` for this gate and realm until the renewal margin. */
async function tokenFits(
  secret: string,
  token: string | undefined,
  gate: { serverId: string; realm: string; now: number }
): Promise<boolean> {
  if (token === undefined) return false
  const check = await verifyGateToken(secret, token, gate.now + LOCAL_TOKEN_RENEWAL)
  return (
    check.kind === 'valid' &&
    check.claims.serverId === gate.serverId &&
    check.claims.realms.includes(gate.realm)
  )
}

/**
 * Creates whatever is missing in the two secret files, and re-mints a gate token that no longer
 * fits (see above). Returns the names it wrote (never values), so that the caller can say what
 * happened. `realm` is the local gate's REALM; `now` in Unix seconds.
 */
export async function ensureSecrets(
  files: SecretFiles,
  serverId: string,
  realm: string = DEFAULT_REALM,
  now: number = Math.floor(Date.now() / 1000)
): Promise<string[]> {
  const written: string[] = []
  const authority = readDotenv(files.authority)
  const authorityUpdates = new Map<string, string>()
  let authoritySecret = authority.get('AUTHORITY_SECRET') ?? ''
  if (isPlaceholder(authoritySecret)) {
    authoritySecret = randomSecret()
    authorityUpdates.set('AUTHORITY_SECRET', authoritySecret)
  }
  // The local /metrics is on (the e2e suite and the bench read it), behind a token of its own.
  if (isPlaceholder(authority.get('METRICS_TOKEN'))) {
    authorityUpdates.set('METRICS_TOKEN', randomSecret())
  }
  if (authorityUpdates.size > 0) {
    writeDotenv(
      files.authority,
      authorityUpdates,
      '# Local secrets of the reference authority, generated by `npm start`. Never commit.'
    )
    written.push(`${files.authority}: ${[...authorityUpdates.keys()].join(', ')}`)
  }

  const gate = readDotenv(files.gate)
  const updates = new Map<string, string>()
  for (const [key, secret] of Object.entries(GATE_SECRETS)) {
    if (!secret.fits(gate.get(key))) updates.set(key, secret.make())
  }
  if (!(await tokenFits(authoritySecret, gate.get('AUTHORITY_TOKEN'), { serverId, realm, now }))) {
    const claims = { serverId, realms: [realm], expiresAt: now + LOCAL_TOKEN_LIFETIME }
    updates.set('AUTHORITY_TOKEN', await mintGateToken(authoritySecret, claims))
  }
  if (updates.size > 0) {
    writeDotenv(
      files.gate,
      updates,
      '# Local secrets of the gate, generated by `npm start` (see .dev.vars.example). Never commit.'
    )
    written.push(`${files.gate}: ${[...updates.keys()].join(', ')}`)
  }
  return written
}
