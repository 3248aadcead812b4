import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  decodeUserRecord,
  encodeUserRecord,
  findUser,
  groupProblem,
  hashesForPassword,
  nameProblem,
  parseUserKey,
  recordEntries,
  type UserRecord,
  userKey,
} from '../../authority/src/store.ts'
import { userhash } from '../../src/digest/algorithms.ts'

function record(name: string, realm = 'digest-gate'): UserRecord {
  return {
    name,
    realm,
    hashes: hashesForPassword(name, realm, 'pw'),
    groups: ['admin'],
    disabled: false,
    source: 'cli',
    updatedAt: '2026-11-22T00:00:00.000Z',
  }
}

function memoryKv(entries: { key: string; value: string }[]) {
  const map = new Map(entries.map((e) => [e.key, e.value]))
  const reads: string[] = []
  return {
    reads,
    async get(key: string) {
      reads.push(key)
      return map.get(key) ?? null
    },
  }
}

describe('user records', () => {
  it('round-trip through their JSON encoding', () => {
    const r = record('Jäsøn Doe')
    expect(decodeUserRecord(encodeUserRecord(r))).toEqual(r)
    expect(JSON.parse(encodeUserRecord(r))).not.toHaveProperty('password')
  })

  it('refuse anything else', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        expect(() => decodeUserRecord(text)).not.toThrow()
      })
    )
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(decodeUserRecord(JSON.stringify(value))).toBeUndefined()
      })
    )
    const bad = { name: 'a', realm: 'r', hashes: { MD5: 'XYZ' }, groups: [], disabled: false }
    expect(decodeUserRecord(JSON.stringify({ ...bad, source: 'cli', updatedAt: 'x' }))).toBe(
      undefined
    )
  })

  it('have keys that parse back, and refuse names that would make them ambiguous', () => {
    expect(parseUserKey(userKey('digest-gate', 'Jäsøn Doe'))).toEqual({
      realm: 'digest-gate',
      name: 'Jäsøn Doe',
    })
    expect(parseUserKey('userhash:x:y')).toBeUndefined()
    expect(nameProblem('name', 'a:b')).toMatch(/':'/)
    expect(nameProblem('realm', '')).toMatch(/empty/)
    expect(nameProblem('name', 'tab\there')).toMatch(/control/)
    expect(nameProblem('name', 'Jäsøn Doe')).toBeUndefined()
    expect(groupProblem('admin')).toBeUndefined()
    expect(groupProblem('a b')).toBeDefined()
  })
})

describe('findUser', () => {
  it('by name and by userhash of each hash function, with equal reads on a miss', async () => {
    const r = record('alice')
    const kv = memoryKv(recordEntries(r))
    expect(await findUser(kv, 'digest-gate', 'alice', { userhash: false })).toEqual({
      kind: 'found',
      record: r,
    })
    for (const hash of ['MD5', 'SHA-256', 'SHA-512-256'] as const) {
      const hex = userhash(hash, 'alice', 'digest-gate')
      kv.reads.length = 0
      expect(await findUser(kv, 'digest-gate', hex, { userhash: true, hash })).toMatchObject({
        kind: 'found',
      })
      const hitReads = kv.reads.length
      kv.reads.length = 0
      const miss = await findUser(kv, 'digest-gate', hex.replace(/^./, 'f'), {
        userhash: true,
        hash,
      })
      expect(miss).toEqual({ kind: 'not_found', reason: 'unknown_user' })
      expect(kv.reads.length).toBe(hitReads)
    }
    expect(await findUser(kv, 'other-realm', 'alice', { userhash: false })).toMatchObject({
      kind: 'not_found',
    })
    expect(await findUser(kv, 'digest-gate', 'bob', { userhash: false })).toEqual({
      kind: 'not_found',
      reason: 'unknown_user',
    })
  })

  it('does not trust a record stored under another key', async () => {
    const r = record('alice')
    const kv = memoryKv([{ key: userKey('digest-gate', 'bob'), value: encodeUserRecord(r) }])
    expect(await findUser(kv, 'digest-gate', 'bob', { userhash: false })).toEqual({
      kind: 'not_found',
      reason: 'corrupt_record',
      name: 'bob',
    })
  })
})
