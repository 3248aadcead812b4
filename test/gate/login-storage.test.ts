/**
 * What an initial authentication stores, and when: a new context's tables, created in one call,
 * are exactly those an object of the first release is migrated to; a stranger's forged answer
 * creates no object, however often it is sent. (A revocation landing during a login:
 * hardening.test.ts, "revocation racing an establish".)
 */
import { listDurableObjectIds, runInDurableObject } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { newContextHandle, readNonceFields } from '../../src/digest/tokens.ts'
import {
  authorization,
  challengeOf,
  client,
  type FakeAuthority,
  GATE,
  gate,
  installPeers,
} from './fakes.ts'
import { fakeClock } from './support/clock.ts'
import { createFirstReleaseTables } from './support/first-release-schema.ts'

let authority: FakeAuthority

beforeEach(() => {
  ;({ authority } = installPeers())
  fakeClock()
})
afterEach(() => {
  vi.restoreAllMocks()
})

const TABLES = ['context', 'failures', 'nonces', 'schema'] as const

type Columns = Record<string, unknown[]>

/** Every column of the context's tables (name, type, not null, default, key) and the version. */
function columnsOf(sql: SqlStorage): { columns: Columns; version: number[] } {
  const columns: Columns = {}
  for (const table of TABLES) {
    columns[table] = sql
      .exec(
        'SELECT name, type, "notnull" AS nn, dflt_value AS dflt, pk FROM pragma_table_info(?) ORDER BY name',
        table
      )
      .toArray()
  }
  const version = sql
    .exec<{ version: number }>('SELECT version FROM schema')
    .toArray()
    .map((r) => r.version)
  return { columns, version }
}

const handleOf = (header: string) =>
  readNonceFields(/nonce="([^"]+)"/.exec(header)?.[1] ?? '')?.handle ?? ''

describe('a new context’s tables', () => {
  it('are those a first-release object is brought up to, with one schema row', async () => {
    const g = gate()
    const alice = client(g, 'alice', 'wonderland')
    expect((await alice.fetch('/private/schema/1')).status).toBe(200)
    const fresh = await runInDurableObject(
      env.CONTEXTS.getByName(handleOf(alice.sent.at(-1)?.authorization ?? '')),
      (_instance, state) => columnsOf(state.storage.sql)
    )

    const migrated = await runInDurableObject(
      env.CONTEXTS.getByName(newContextHandle()),
      (instance, state) => {
        const sql = state.storage.sql
        // The tables as the first release created them.
        createFirstReleaseTables(sql)
        const storage = (instance as unknown as { storage: { ensureTables(): void } }).storage
        storage.ensureTables()
        return columnsOf(sql)
      }
    )
    expect(fresh.version).toEqual([2])
    expect(fresh).toEqual(migrated)
    expect(fresh.columns.context?.length).toBe(15)
  })
})

describe('a stranger’s login', () => {
  it('a forged answer to a fresh challenge, sent again and again, creates no object', async () => {
    const g = gate()
    const challenge = challengeOf(await g(new Request(`${GATE}/private/forged`)))
    const handle = readNonceFields(challenge.nonce)?.handle ?? ''
    expect(handle).not.toBe('')
    for (let nc = 1; nc <= 3; nc++) {
      const forged = await g(
        new Request(`${GATE}/private/forged`, {
          headers: {
            authorization: await authorization({
              user: 'alice',
              password: 'a-guess',
              nonce: challenge.nonce,
              opaque: challenge.opaque,
              uri: '/private/forged',
              nc,
            }),
          },
        })
      )
      expect(forged.status).toBe(401)
    }
    // Each guess was admitted by the brakes and denied by the authority before any call to the
    // handle's object: workerd has not even created it (no SQLite file).
    expect(authority.calls).toBe(3)
    const ids = (await listDurableObjectIds(env.CONTEXTS)).map((id) => id.toString())
    expect(ids).not.toContain(env.CONTEXTS.idFromName(handle).toString())
  })
})
