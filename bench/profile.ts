/**
 * `npx node bench/profile.ts [row] [load]`: V8 CPU profile of one bench row inside workerd, through
 * the inspector of the edge process. Prints the functions with the most self time and the share
 * of each source (gate, digest core, Hono, runtime), and writes the .cpuprofile (open it in Chrome
 * DevTools) to the temporary directory. Rows and loads as in `npm run bench` (default: c-window conn-8).
 */
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { PROJECT_ROOT } from '../scripts/stack/paths.ts'
import { freePort } from '../scripts/stack/ports.ts'
import { Inspector } from './lib/inspector.ts'
import { runLoadInThread } from './lib/load.ts'
import { LOADS, prepareRow, ROWS } from './lib/rows.ts'
import { SourceMap } from './lib/source-map.ts'
import { BENCH_USER, startBenchStack } from './lib/stack.ts'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  hitCount?: number
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples?: number[]
}

/** Which worker each edge service is; the inspector lists them by service name. */
const SERVICE_OF: Record<string, string> = {
  a: 'pass-through',
  "a'": 'pass-through-do',
  "a''": 'pass-through-do',
  b: 'basic-auth',
  p: 'gate-window',
  'c-window': 'gate-window',
  'c-window-tmpfs': 'gate-window-tmpfs',
  'c-off': 'gate-off',
  'c-window-all': 'gate-window-all',
  'c-off-all': 'gate-off-all',
  d0: 'gate-window',
  d: 'gate-window',
}

const SERVICE_BUNDLE: Record<string, string> = {
  'pass-through': 'passThrough',
  'pass-through-do': 'passThroughDo',
  'basic-auth': 'basicAuth',
}

/** Where a frame's code comes from: a project directory, a package, or the runtime. */
function source(file: string, name: string): string {
  if (file === '' && ['(garbage collector)', '(program)', '(idle)', '(root)'].includes(name)) {
    return name
  }
  if (file === '') return 'runtime (native code)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file)
  if (pkg) return pkg[1] ?? file
  const dir = /(src\/[^/]+|authority\/src|demo-origin\/src|bench\/workers)\//.exec(file)
  if (dir) return dir[1] ?? file
  return file.replace(/^.*\//, '')
}

/** Names every frame by its original file and line, through the bundle's source map. */
function frameNamer(map: SourceMap | undefined, bundleDir: string) {
  return (f: ProfileNode['callFrame']): { key: string; file: string } => {
    const name = f.functionName || '(anonymous)'
    // Only the bundle's own frames are mapped (not the runtime's node-internal: modules).
    if (!map || !/(^|\/)index\.js$/.test(f.url)) {
      return { key: `${name} ${f.url.replace(/^.*\//, '')}`, file: f.url }
    }
    const pos = map.lookup(f.lineNumber, f.columnNumber)
    // Sources are relative to the bundle's directory: named here from the project's root.
    const file = pos ? relative(PROJECT_ROOT, resolve(bundleDir, pos.source)) : f.url
    return { key: `${name} ${file}${pos ? `:${pos.line}` : ''}`, file }
  }
}

function summarize(profile: Profile, map: SourceMap | undefined, bundleDir: string): string {
  const name = frameNamer(map, bundleDir)
  const interval =
    profile.samples && profile.samples.length > 0
      ? (profile.endTime - profile.startTime) / profile.samples.length / 1000
      : 0
  const byFunction = new Map<string, number>()
  const bySource = new Map<string, number>()
  let total = 0
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0
    if (hits === 0) continue
    const f = node.callFrame
    const { key, file } = name(f)
    byFunction.set(key, (byFunction.get(key) ?? 0) + hits)
    const s = source(file, f.functionName)
    bySource.set(s, (bySource.get(s) ?? 0) + hits)
    total += hits
  }
  const busy = total - (bySource.get('(idle)') ?? 0)
  const pct = (n: number) => `${((n / Math.max(1, busy)) * 100).toFixed(1)}%`
  const lines = [`samples ${total}, busy ${busy} (~${(busy * interval).toFixed(0)} ms of CPU)`]
  lines.push('\nby source (share of busy time):')
  for (const [s, n] of [...bySource].sort((a, b) => b[1] - a[1])) {
    if (s !== '(idle)') lines.push(`  ${pct(n).padStart(6)}  ${s}`)
  }
  // Inclusive time: a function's own samples and its callees' (once per stack, for recursion).
  const parentOf = new Map<number, number>()
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id)
  const inclusive = new Map<string, number>()
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0
    if (hits === 0) continue
    const seen = new Set<string>()
    for (let id: number | undefined = n.id; id !== undefined; id = parentOf.get(id)) {
      const f = byId.get(id)?.callFrame
      if (!f?.functionName || f.functionName === '(root)') continue
      const { key } = name(f)
      if (seen.has(key)) continue
      seen.add(key)
      inclusive.set(key, (inclusive.get(key) ?? 0) + hits)
    }
  }
  lines.push('\ntop functions by inclusive time:')
  for (const [f, n] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
    lines.push(`  ${pct(n).padStart(6)}  ${f}`)
  }
  lines.push('\ntop functions by self time:')
  for (const [f, n] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    if (!f.startsWith('(idle)')) lines.push(`  ${pct(n).padStart(6)}  ${f}`)
  }
  return lines.join('\n')
}

async function main(): Promise<void> {
  const rowId = process.argv[2] ?? 'c-window'
  const loadId = process.argv[3] ?? 'conn-8'
  const row = ROWS.find((r) => r.id === rowId)
  const load = LOADS.find((l) => l.id === loadId)
  const service = SERVICE_OF[rowId]
  if (!row || !load || !service) throw new Error(`unknown row ${rowId} or load ${loadId}`)
  const inspectorPort = await freePort()
  const stack = await startBenchStack({
    log: (m) => console.log(`[profile] ${m}`),
    apache: false,
    inspectorPort,
  })
  try {
    const timing = { warmupMs: 500, durationMs: 3000 }
    const budget = { requests: 20_000, initial: 1500 }
    // Warm the target first, then profile a fresh plan.
    const warm = await prepareRow(row, load, stack, BENCH_USER, { requests: 4000, initial: 200 })
    await runLoadInThread(warm.slice({ warmupMs: 0, durationMs: 1000 }))
    const plan = (await prepareRow(row, load, stack, BENCH_USER, budget)).slice(timing)
    console.log(`[profile] profiling ${service} during (${rowId}) ${loadId}`)
    const inspector = await Inspector.target(inspectorPort, service)
    await inspector.send('Profiler.enable')
    await inspector.send('Profiler.setSamplingInterval', { interval: 200 })
    await inspector.send('Profiler.start')
    const result = await runLoadInThread(plan)
    const { profile } = await inspector.send<{ profile: Profile }>('Profiler.stop')
    inspector.close()
    console.log(
      `[profile] ${result.ok} ok of ${result.completed} in ${result.windowMs.toFixed(0)} ms (${Math.round((result.ok / result.windowMs) * 1000)} ok/s)`
    )
    const bundle =
      stack.bundles[service.startsWith('gate') ? 'gate' : (SERVICE_BUNDLE[service] ?? '')]
    const map = bundle ? SourceMap.read(`${bundle}.map`) : undefined
    console.log(summarize(profile, map, bundle ? dirname(bundle) : PROJECT_ROOT))
    // Megabytes: kept out of bench/results (and of git).
    const file = join(tmpdir(), `digest-gate-profile-${rowId}-${loadId}.cpuprofile`)
    writeFileSync(file, JSON.stringify(profile))
    console.log(`[profile] wrote ${file}`)
  } finally {
    await stack.stop()
  }
}

main().catch((error: unknown) => {
  console.error(
    `[profile] ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`
  )
  process.exit(1)
})
