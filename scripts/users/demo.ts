/**
 * The demo users of `npm start` (README): realm "digest-gate", every hash function, userhash
 * indexes. Seeding creates the missing ones and leaves existing ones alone (idempotent).
 */
import {
  DEFAULT_REALM,
  hashesForPassword,
  recordEntries,
  type UserRecord,
  userKey,
} from '../../authority/src/store.ts'
import { type KvTarget, kvGetMany, kvPutMany } from './kv.ts'

export interface DemoUser {
  name: string
  password: string
  groups: string[]
}

export const DEMO_USERS: readonly DemoUser[] = [
  { name: 'alice', password: 'wonderland', groups: ['admin'] },
  { name: 'bob', password: 'builder', groups: [] },
  // RFC 7616 §3.9.2's user: non-ASCII name, a password with a comma and a space.
  { name: 'Jäsøn Doe', password: 'Secret, or not?', groups: [] },
]

export function demoRecord(user: DemoUser, now = new Date()): UserRecord {
  return {
    name: user.name,
    realm: DEFAULT_REALM,
    hashes: hashesForPassword(user.name, DEFAULT_REALM, user.password),
    groups: [...user.groups],
    disabled: false,
    source: 'cli',
    updatedAt: now.toISOString(),
  }
}

/** Creates the demo users that are missing (all of them with `reset`); two wrangler runs. */
export async function seedDemo(
  target: KvTarget,
  options: { reset?: boolean } = {}
): Promise<{ created: string[]; kept: string[] }> {
  const keys = DEMO_USERS.map((user) => userKey(DEFAULT_REALM, user.name))
  const existing = options.reset ? new Map<string, string | null>() : await kvGetMany(target, keys)
  const created: string[] = []
  const kept: string[] = []
  const entries = []
  for (const user of DEMO_USERS) {
    if (existing.get(userKey(DEFAULT_REALM, user.name))) {
      kept.push(user.name)
      continue
    }
    entries.push(...recordEntries(demoRecord(user)))
    created.push(user.name)
  }
  await kvPutMany(target, entries)
  return { created, kept }
}
