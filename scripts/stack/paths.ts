/** Where things are in the project, and the stack's defaults (README "npm start"). */
import { join, resolve } from 'node:path'
import type { SecretFiles } from './secrets.ts'

export const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..')

export const DEFAULT_PORTS = { gate: 8787, authority: 8788, origin: 8789 } as const

/** Same layout as `wrangler dev` and `wrangler kv --local` use, so the users CLI sees one store. */
export const DEFAULT_PERSIST_TO = join(PROJECT_ROOT, '.wrangler', 'state')

export const PROJECT_SECRETS: SecretFiles = {
  gate: join(PROJECT_ROOT, '.dev.vars'),
  authority: join(PROJECT_ROOT, 'authority', '.dev.vars'),
}

export const CONFIGS = {
  gate: join(PROJECT_ROOT, 'wrangler.toml'),
  authority: join(PROJECT_ROOT, 'authority', 'wrangler.toml'),
  origin: join(PROJECT_ROOT, 'demo-origin', 'wrangler.toml'),
} as const

export const WRANGLER_CLI = join(PROJECT_ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js')
export const USERS_CLI = join(PROJECT_ROOT, 'scripts', 'users.ts')

/** The gate's server identity, as in wrangler.toml and the minted AUTHORITY_TOKEN. */
export const LOCAL_SERVER_ID = 'gate-local'

/** The demo's route rules (README, "Quick start"): public, any user, group admin. */
export const DEMO_ROUTES = JSON.stringify([
  { path: '/public/*', access: 'public' },
  { path: '/admin/*', groups: ['admin'] },
  { path: '/*', access: 'authenticated' },
])

/** Child-process environment: Node 24 from node_modules first on PATH, no telemetry prompts. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const bin = join(PROJECT_ROOT, 'node_modules', '.bin')
  return {
    ...process.env,
    PATH: `${bin}:${process.env.PATH ?? ''}`,
    WRANGLER_SEND_METRICS: 'false',
    ...extra,
  }
}

/** The gate's port from the PORT environment variable (default 8787). */
export function gatePortFromEnv(): number {
  const raw = process.env.PORT
  if (raw === undefined || raw === '') return DEFAULT_PORTS.gate
  const port = Number(raw)
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(`PORT must be a TCP port number, got ${JSON.stringify(raw)}`)
  }
  return port
}
