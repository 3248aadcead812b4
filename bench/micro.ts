/**
 * Micro-benchmark of the protocol core's CPU cost (`npm run bench:micro`):
 * - under Node 24: Digest response verifications per second for every algorithm, and nonce/opaque
 *   mint/verify cost, each row for a bounded time;
 * - the hash implementations of bench/lib/hash-candidates.ts per call, under Node and inside
 *   workerd (bench/lib/hash-micro.ts): what src/digest/hash.ts chose from.
 * Prints tables and writes bench/results/micro-<date>.json.
 *
 * Environment: BENCH_ROW_MS (ms per core row, 1500), BENCH_HASH_ROUNDS (interleaved rounds per
 * hash candidate, 7), BENCH_HASH_SAMPLE_MS (ms per round, 150), BENCH_WORKERD=0 (skip workerd).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import {
  ALGORITHMS,
  baseHA1,
  computeResponse,
  hashOf,
  timingSafeEqualString,
} from '../src/digest/algorithms.ts'
import { hashHex, hashImplementation } from '../src/digest/hash.ts'
import { checkNc, emptyNcState, recordNc } from '../src/digest/nc-window.ts'
import { createTokenMinter, newContextHandle } from '../src/digest/tokens.ts'
import type { HashName } from '../src/digest/types.ts'
import { type HashRow, hashRows } from './lib/hash-micro.ts'

const ROW_MS = Number(process.env.BENCH_ROW_MS ?? 1500)
const HASH_ROUNDS = Number(process.env.BENCH_HASH_ROUNDS ?? 7)
const HASH_SAMPLE_MS = Number(process.env.BENCH_HASH_SAMPLE_MS ?? 150)
const WITH_WORKERD = process.env.BENCH_WORKERD !== '0'
const WARMUP_MS = 200

interface Row {
  name: string
  ops: number
  opsPerSecond: number
  microsecondsPerOp: number
}

/** Runs `op` repeatedly for about `ms` milliseconds (after a warm-up) and reports its rate. */
async function measure(name: string, op: (i: number) => Promise<unknown> | unknown): Promise<Row> {
  const run = async (ms: number): Promise<{ ops: number; elapsed: number }> => {
    const start = performance.now()
    let ops = 0
    let elapsed = 0
    while (elapsed < ms) {
      for (let k = 0; k < 50; k++) {
        // Synchronous operations are not awaited: that would time a microtask turn too.
        const result = op(ops++)
        if (result instanceof Promise) await result
      }
      elapsed = performance.now() - start
    }
    return { ops, elapsed }
  }
  await run(WARMUP_MS)
  const { ops, elapsed } = await run(ROW_MS)
  return {
    name,
    ops,
    opsPerSecond: Math.round((ops / elapsed) * 1000),
    microsecondsPerOp: Number(((elapsed * 1000) / ops).toFixed(2)),
  }
}

const minter = await createTokenMinter({
  current: { id: 2, secret: 'bench-secret-current-0123456789abcdef' },
  previous: { id: 1, secret: 'bench-secret-previous-0123456789abcdef' },
})
const handle = newContextHandle()
const now = Math.floor(Date.now() / 1000)
const nonce = await minter.mintNonce({ serverId: 'gate-1', handle, now })
const opaque = await minter.mintOpaque(handle)
const realm = 'bench@example.org'
const rows: Row[] = []

for (const hash of ['MD5', 'SHA-256', 'SHA-512-256'] as HashName[]) {
  rows.push(await measure(`hashHex ${hash} (44 bytes)`, (i) => hashHex(hash, `user:${realm}:${i}`)))
}

for (const algorithm of ALGORITHMS) {
  const ha1 = baseHA1(hashOf(algorithm), 'alice', realm, 'correct horse')
  const request = {
    algorithm,
    ha1,
    nonce,
    cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
    qop: 'auth' as const,
    method: 'GET',
    uri: '/api/resource?id=42',
  }
  const response = computeResponse({ ...request, nc: '00000001' })
  rows.push(
    await measure(`verify ${algorithm} (qop=auth)`, (i) => {
      // A fresh nc each time, as real traffic: nothing can be cached across iterations.
      const nc = (i + 1).toString(16).padStart(8, '0')
      const expected = computeResponse({ ...request, nc })
      return timingSafeEqualString(expected, response)
    })
  )
}

const expect = { serverId: 'gate-1', now, lifetimeSeconds: 300 }
rows.push(await measure('nonce mint', () => minter.mintNonce({ serverId: 'gate-1', handle, now })))
rows.push(await measure('nonce verify', () => minter.verifyNonce(nonce, expect)))
rows.push(await measure('opaque mint', () => minter.mintOpaque(handle)))
rows.push(await measure('opaque verify', () => minter.verifyOpaque(opaque)))

let ncState = emptyNcState(128)
rows.push(
  await measure('nc window check+record', (i) => {
    const nc = i + 1
    if (checkNc(ncState, nc, 'window') === 'fresh') ncState = recordNc(ncState, nc, 'window')
  })
)

const environment = {
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  rowMs: ROW_MS,
  hashRounds: HASH_ROUNDS,
  hashSampleMs: HASH_SAMPLE_MS,
  coreHashes: Object.fromEntries(
    (['MD5', 'SHA-256', 'SHA-512-256'] as HashName[]).map((h) => [h, hashImplementation(h)])
  ),
}
console.log(`digest core micro-benchmark — Node ${environment.node}, ${environment.cpu}`)
console.log(`core hashes under Node: ${JSON.stringify(environment.coreHashes)}`)
console.table(
  rows.map((r) => ({
    benchmark: r.name,
    'ops/s': r.opsPerSecond.toLocaleString('en-US'),
    'µs/op': r.microsecondsPerOp,
  }))
)

const hashes: HashRow[] = []
for (const runtime of WITH_WORKERD ? (['node', 'workerd'] as const) : (['node'] as const)) {
  hashes.push(
    ...(await hashRows({
      runtime,
      rounds: HASH_ROUNDS,
      sampleMs: HASH_SAMPLE_MS,
      log: (line) => console.error(line),
    }))
  )
}
printHashTables(hashes)

/** One table per runtime: targets down, candidates across; CPU µs per call (wall µs beside). */
function printHashTables(all: HashRow[]): void {
  for (const runtime of ['node', 'workerd'] as const) {
    const mine = all.filter((r) => r.runtime === runtime)
    if (mine.length === 0) continue
    console.log(
      `hash candidates in ${runtime}: µs per call, median of ${HASH_ROUNDS} rounds, CPU (wall)`
    )
    const targets = [...new Set(mine.map((r) => r.target))]
    const names = [...new Set(mine.map((r) => r.candidate))]
    console.table(
      targets.map((target) => {
        const cells = names.map((name) => {
          const row = mine.find((r) => r.target === target && r.candidate === name)
          const cpu = row?.cpuMicrosecondsPerCall
          return [name, `${cpu ?? '—'} (${row?.microsecondsPerCall ?? '—'})`]
        })
        return Object.fromEntries([['target', target], ...cells])
      })
    )
  }
}

const date = new Date().toISOString().slice(0, 10)
const dir = new URL('./results/', import.meta.url)
mkdirSync(dir, { recursive: true })
const file = new URL(`micro-${date}.json`, dir)
writeFileSync(
  file,
  `${JSON.stringify({ date: new Date().toISOString(), environment, rows, hashes }, null, 2)}\n`
)
console.log(`written ${file.pathname}`)
