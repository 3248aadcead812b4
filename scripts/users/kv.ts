/**
 * The users CLI's access to the USERS namespace, through `wrangler kv` (local store by default,
 * the deployed namespace with --remote). Batched: one wrangler run per read, write or delete, so
 * a record and its userhash index keys change together.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { KvEntry, UserSummary } from '../../authority/src/store.ts'
import { type RunResult, runProgram } from '../stack/process.ts'

export interface KvTarget {
  /** The deployed namespace (`--remote`) instead of the local store. */
  remote: boolean
  /** Local store directory, as `wrangler dev --persist-to` (ignored with remote). */
  persistTo: string
  /** authority/wrangler.toml: where the USERS binding is declared. */
  config: string
  /** Directory to run wrangler in (the project root). */
  cwd: string
  /** Path of wrangler's bin/wrangler.js. */
  wrangler: string
}

export interface ListedKey {
  name: string
  metadata?: UserSummary
}

/** A wrangler run that failed, with what it said. */
export class WranglerError extends Error {
  override readonly name = 'WranglerError'
}

function targetArgs(target: KvTarget): string[] {
  const where = target.remote ? ['--remote'] : ['--local', '--persist-to', target.persistTo]
  return ['--binding', 'USERS', ...where, '-c', target.config]
}

async function runWrangler(target: KvTarget, args: string[]): Promise<string> {
  let result: RunResult
  try {
    result = await runProgram(process.execPath, [target.wrangler, ...args, ...targetArgs(target)], {
      cwd: target.cwd,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', NO_COLOR: '1', FORCE_COLOR: '0' },
    })
  } catch (error) {
    throw new WranglerError(
      `cannot run wrangler: ${error instanceof Error ? error.message : error}`
    )
  }
  if (result.code === 0) return result.stdout
  const said = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-15).join('\n')
  throw new WranglerError(`wrangler kv ${args.slice(1, 3).join(' ')} failed:\n${said}`)
}

/** Writes a JSON file only the owner can read (it may hold password hashes), removed after use. */
async function withJsonFile<T>(data: unknown, use: (file: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'digest-gate-users-'))
  const file = join(dir, 'batch.json')
  try {
    writeFileSync(file, JSON.stringify(data), { mode: 0o600 })
    return await use(file)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** wrangler may print a banner before the JSON: parse from the first line that opens JSON. */
function parseJsonOutput(stdout: string): unknown {
  const start = stdout.search(/^[[{]/m)
  if (start < 0) throw new WranglerError(`unexpected wrangler output:\n${stdout.slice(0, 500)}`)
  try {
    return JSON.parse(stdout.slice(start))
  } catch {
    throw new WranglerError(`unexpected wrangler output:\n${stdout.slice(0, 500)}`)
  }
}

/** The Cloudflare API's bulk get takes at most 100 keys per call (wrangler does not split). */
const BULK_GET_MAX = 100

/**
 * Values of `keys` (null where absent), one `wrangler kv bulk get` per 100 keys. Local runs print
 * `{key: {value}}`, remote runs the API's `{key: value}`: both are read.
 */
export async function kvGetMany(
  target: KvTarget,
  keys: string[]
): Promise<Map<string, string | null>> {
  const values = new Map<string, string | null>()
  for (let at = 0; at < keys.length; at += BULK_GET_MAX) {
    const batch = keys.slice(at, at + BULK_GET_MAX)
    const output = await withJsonFile(batch, (file) =>
      runWrangler(target, ['kv', 'bulk', 'get', file])
    )
    const parsed = parseJsonOutput(output) as Record<string, unknown>
    for (const key of batch) {
      const entry = Object.hasOwn(parsed, key) ? parsed[key] : null
      const value =
        typeof entry === 'object' && entry !== null ? (entry as { value?: unknown }).value : entry
      values.set(key, typeof value === 'string' ? value : null)
    }
  }
  return values
}

export async function kvGet(target: KvTarget, key: string): Promise<string | null> {
  return (await kvGetMany(target, [key])).get(key) ?? null
}

/** Writes entries (with their metadata) in one `wrangler kv bulk put`. */
export async function kvPutMany(target: KvTarget, entries: KvEntry[]): Promise<void> {
  if (entries.length === 0) return
  await withJsonFile(entries, (file) => runWrangler(target, ['kv', 'bulk', 'put', file]))
}

/** Deletes keys in one `wrangler kv bulk delete --force`. */
export async function kvDeleteMany(target: KvTarget, keys: string[]): Promise<void> {
  if (keys.length === 0) return
  await withJsonFile(keys, (file) => runWrangler(target, ['kv', 'bulk', 'delete', file, '--force']))
}

/** Every key under a prefix, with its metadata (wrangler pages through the listing). */
export async function kvList(target: KvTarget, prefix: string): Promise<ListedKey[]> {
  const output = await runWrangler(target, ['kv', 'key', 'list', '--prefix', prefix])
  const parsed = parseJsonOutput(output)
  if (!Array.isArray(parsed)) throw new WranglerError('unexpected wrangler kv key list output')
  return parsed.filter(
    (item): item is ListedKey => typeof item === 'object' && item !== null && 'name' in item
  )
}
