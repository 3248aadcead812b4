/**
 * The reference authority's user store: record layout, KV key names, lookups. Shared by the
 * worker and the CLI (scripts/users.ts), so it is pure TypeScript with no Workers imports.
 *
 *   user:<realm>:<name>                   -> UserRecord JSON (metadata: UserSummary)
 *   userhash:<realm>:<hashName>:<hex>     -> <name>
 *
 * Neither realms nor names may contain ':' (as in Apache htdigest files), so keys never collide.
 * Passwords are never stored: only H(name:realm:password) per hash function.
 */
import { baseHA1, userhash } from '../../src/digest/algorithms.ts'
import type { HashName } from '../../src/digest/types.ts'

export const HASH_NAMES: readonly HashName[] = ['MD5', 'SHA-256', 'SHA-512-256']
export const HEX_LENGTH: Readonly<Record<HashName, number>> = {
  MD5: 32,
  'SHA-256': 64,
  'SHA-512-256': 64,
}

export type UserSource = 'cli' | 'htdigest'

export interface UserRecord {
  name: string
  realm: string
  /** Hex H(name:realm:password) per hash function; htdigest imports have MD5 only. */
  hashes: Partial<Record<HashName, string>>
  groups: string[]
  disabled: boolean
  source: UserSource
  /** ISO 8601. */
  updatedAt: string
}

/** What `wrangler kv key list` shows without reading values (KV metadata, at most 1024 bytes). */
export interface UserSummary {
  disabled: boolean
  source: UserSource
  groups: string[]
  hashes: HashName[]
}

export interface KvEntry {
  key: string
  value: string
  metadata?: UserSummary
}

/** The read side of a KV namespace (Workers KV binding or anything shaped like it). */
export interface KvReader {
  get(key: string): Promise<string | null>
}

export const USER_PREFIX = 'user:'
export const USERHASH_PREFIX = 'userhash:'
export const DEFAULT_REALM = 'digest-gate'

const MAX_NAME = 256
const MAX_GROUP = 64
export const MAX_GROUPS = 32
// Control characters (C0, DEL, C1) have no place in names, realms or groups.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/
const GROUP = /^[A-Za-z0-9._@-]+$/
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** Why a user name or realm cannot be stored; undefined when it can. */
export function nameProblem(kind: 'name' | 'realm', value: string): string | undefined {
  if (value.length === 0) return `the ${kind} must not be empty`
  if (value.length > MAX_NAME) return `the ${kind} must be at most ${MAX_NAME} characters`
  if (value.includes(':')) return `the ${kind} must not contain ':'`
  if (CONTROL.test(value)) return `the ${kind} must not contain control characters`
  if (LONE_SURROGATE.test(value)) return `the ${kind} must be valid Unicode`
  return undefined
}

export function groupProblem(group: string): string | undefined {
  if (group.length === 0 || group.length > MAX_GROUP || !GROUP.test(group)) {
    return `group "${group}" must be 1-${MAX_GROUP} characters of A-Z a-z 0-9 . _ @ -`
  }
  return undefined
}

export function userKey(realm: string, name: string): string {
  return `${USER_PREFIX}${realm}:${name}`
}

export function userhashKey(realm: string, hash: HashName, hex: string): string {
  return `${USERHASH_PREFIX}${realm}:${hash}:${hex}`
}

/** Inverse of userKey; undefined for keys of another shape. */
export function parseUserKey(key: string): { realm: string; name: string } | undefined {
  if (!key.startsWith(USER_PREFIX)) return undefined
  const rest = key.slice(USER_PREFIX.length)
  const colon = rest.indexOf(':')
  if (colon < 0) return undefined
  return { realm: rest.slice(0, colon), name: rest.slice(colon + 1) }
}

export function encodeUserRecord(record: UserRecord): string {
  const { name, realm, hashes, groups, disabled, source, updatedAt } = record
  return JSON.stringify({ name, realm, hashes, groups, disabled, source, updatedAt })
}

function isHex(value: unknown, length: number): value is string {
  return typeof value === 'string' && value.length === length && /^[0-9a-f]+$/.test(value)
}

/** Parses a stored record; undefined for anything that is not a well-formed record. */
export function decodeUserRecord(text: string): UserRecord | undefined {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined
  const r = data as Record<string, unknown>
  if (typeof r.name !== 'string' || typeof r.realm !== 'string') return undefined
  if (typeof r.disabled !== 'boolean' || typeof r.updatedAt !== 'string') return undefined
  if (r.source !== 'cli' && r.source !== 'htdigest') return undefined
  if (!Array.isArray(r.groups) || !r.groups.every((g) => typeof g === 'string')) return undefined
  if (typeof r.hashes !== 'object' || r.hashes === null) return undefined
  const stored = r.hashes as Record<string, unknown>
  const hashes: UserRecord['hashes'] = {}
  for (const hash of HASH_NAMES) {
    const value = Object.hasOwn(stored, hash) ? stored[hash] : undefined
    if (value === undefined) continue
    if (!isHex(value, HEX_LENGTH[hash])) return undefined
    hashes[hash] = value
  }
  return {
    name: r.name,
    realm: r.realm,
    hashes,
    groups: [...r.groups],
    disabled: r.disabled,
    source: r.source,
    updatedAt: r.updatedAt,
  }
}

export function summarize(record: UserRecord): UserSummary {
  const summary: UserSummary = {
    disabled: record.disabled,
    source: record.source,
    groups: record.groups,
    hashes: HASH_NAMES.filter((hash) => record.hashes[hash] !== undefined),
  }
  // KV metadata is capped at 1024 bytes; the record itself always has the full list.
  if (JSON.stringify(summary).length > 900) summary.groups = []
  return summary
}

/** H(name:realm:password) for every hash function: a CLI-created user can log in with any. */
export function hashesForPassword(
  name: string,
  realm: string,
  password: string
): Record<HashName, string> {
  return {
    MD5: baseHA1('MD5', name, realm, password),
    'SHA-256': baseHA1('SHA-256', name, realm, password),
    'SHA-512-256': baseHA1('SHA-512-256', name, realm, password),
  }
}

/** The userhash index keys of a user, one per hash function (whether or not a hash is stored). */
export function userhashKeys(realm: string, name: string): string[] {
  return HASH_NAMES.map((hash) => userhashKey(realm, hash, userhash(hash, name, realm)))
}

/** Every KV entry that stores a user: the record (with its summary) and its userhash indexes. */
export function recordEntries(record: UserRecord): KvEntry[] {
  const indexes = userhashKeys(record.realm, record.name)
  return [
    {
      key: userKey(record.realm, record.name),
      value: encodeUserRecord(record),
      metadata: summarize(record),
    },
    ...indexes.map((key) => ({ key, value: record.name })),
  ]
}

/** Every KV key of a user, for deletion. */
export function recordKeys(realm: string, name: string): string[] {
  return [userKey(realm, name), ...userhashKeys(realm, name)]
}

export type Lookup =
  | { kind: 'found'; record: UserRecord }
  | { kind: 'not_found'; reason: 'unknown_user' | 'invalid_name' }
  /** A stored record under that name that does not decode: `name` is the key's, for the admin. */
  | { kind: 'not_found'; reason: 'corrupt_record'; name: string }

/**
 * Finds a user of a realm by name, or by userhash (hex, for the given hash function). Each path
 * makes as many KV reads on a miss as on a hit, so a miss is not measurably faster.
 */
export async function findUser(
  kv: KvReader,
  realm: string,
  username: string,
  by: { userhash: false } | { userhash: true; hash: HashName }
): Promise<Lookup> {
  if (nameProblem('realm', realm) !== undefined)
    return { kind: 'not_found', reason: 'invalid_name' }
  let name = username
  if (by.userhash) {
    const hex = username.toLowerCase()
    const indexed = isHex(hex, HEX_LENGTH[by.hash])
      ? await kv.get(userhashKey(realm, by.hash, hex))
      : null
    if (indexed === null) {
      // The record read of a hit, so that a miss costs the same.
      await kv.get(userKey(realm, '\u0000'))
      return { kind: 'not_found', reason: 'unknown_user' }
    }
    name = indexed
  }
  if (nameProblem('name', name) !== undefined) return { kind: 'not_found', reason: 'invalid_name' }
  const text = await kv.get(userKey(realm, name))
  if (text === null) return { kind: 'not_found', reason: 'unknown_user' }
  const record = decodeUserRecord(text)
  if (record === undefined || record.name !== name || record.realm !== realm) {
    return { kind: 'not_found', reason: 'corrupt_record', name }
  }
  return { kind: 'found', record }
}
