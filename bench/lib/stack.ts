/**
 * Everything the bench measures, started on this machine on free 127.0.0.1 ports, with storage,
 * secrets and users of its own in a temporary directory (the `npm start` store is not touched):
 * - origin process (plain workerd): the bench's origin (bench/workers/origin), which every row
 *   forwards to;
 * - edge process (plain workerd): the bench workers (a, a', a'', b) and the gate three times
 *   (replay window; window with its Durable Object files on tmpfs; off);
 * - the reference authority on Miniflare (its KV store needs Miniflare's implementation);
 * all started by scripts/stack/launcher.ts, from the stack plan of scripts/stack/stack.ts.
 * - Apache httpd with mod_auth_digest, when available.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bundleWorkers } from '../../scripts/stack/bundle.ts'
import {
  type RunningWorker,
  startMiniflare,
  startWorkerd,
  type WorkerSpec,
} from '../../scripts/stack/launcher.ts'
import { PROJECT_ROOT } from '../../scripts/stack/paths.ts'
import { freePorts } from '../../scripts/stack/ports.ts'
import { readDotenv } from '../../scripts/stack/secrets.ts'
import { prepareStack, stackWorkers } from '../../scripts/stack/stack.ts'
import { type ApacheServer, ensureApache, startApache } from './apache.ts'
import { DecisionTally } from './decisions.ts'
import type { Credentials } from './requests.ts'

/** RAM-backed filesystem (Linux); without it the tmpfs row runs on the disk like the others. */
const TMPFS = '/dev/shm'

export const BENCH_USER: Credentials = { username: 'bob', password: 'builder' }
export const REALM = 'digest-gate'

/**
 * Row (d)'s logins are all one user's from one address: brake thresholds that such a storm does
 * not reach (the brakes still admit and settle every login).
 */
export const BENCH_LOGIN_BRAKES = {
  BRAKE_USER_FAILURES: '100000',
  BRAKE_CLIENT_FAILURES: '100000',
  BRAKE_USER_GLOBAL_FAILURES: '100000',
}

const CONFIGS = {
  // BENCH_GATE_CONFIG: another gate build (e.g. a patched copy of the project) for an A/B run.
  gate: process.env.BENCH_GATE_CONFIG ?? join(PROJECT_ROOT, 'wrangler.toml'),
  authority: join(PROJECT_ROOT, 'authority', 'wrangler.toml'),
  origin: join(PROJECT_ROOT, 'bench', 'workers', 'origin', 'wrangler.toml'),
  passThrough: join(PROJECT_ROOT, 'bench', 'workers', 'pass-through', 'wrangler.toml'),
  passThroughDo: join(PROJECT_ROOT, 'bench', 'workers', 'pass-through-do', 'wrangler.toml'),
  basicAuth: join(PROJECT_ROOT, 'bench', 'workers', 'basic-auth', 'wrangler.toml'),
}

export interface BenchStack {
  readonly ports: {
    origin: number
    authority: number
    passThrough: number
    passThroughDo: number
    basicAuth: number
    gateWindow: number
    gateWindowTmpfs: number
    gateOff: number
    apache: number
    gateWindowAll: number
    gateOffAll: number
  }
  /** Decision-log counts of both gates (only the gates log in the edge process). */
  readonly decisions: DecisionTally
  readonly apache: ApacheServer | undefined
  /** Why the Apache rows are missing, when they are. */
  readonly apacheSkipped: string | undefined
  /** The bundles that run, by worker (their .map beside them). */
  readonly bundles: Record<string, string>
  /** The edge workerd process (every worker under test but Apache), for its own CPU. */
  edgePid(): number | undefined
  /** Sum of the authority's authority_verify_total counters. */
  authorityVerifications(): Promise<number>
  stop(): Promise<void>
}

export async function startBenchStack(options: {
  log: (message: string) => void
  apache: boolean
  /** Opens the edge process's V8 inspector on this port (bench/profile.ts). */
  inspectorPort?: number
}): Promise<BenchStack> {
  const { log } = options
  const dir = mkdtempSync(join(tmpdir(), 'digest-gate-bench-'))
  const free = await freePorts(11)
  const port = (i: number) => free[i] as number
  const ports = {
    origin: port(0),
    authority: port(1),
    passThrough: port(2),
    passThroughDo: port(3),
    basicAuth: port(4),
    gateWindow: port(5),
    gateWindowTmpfs: port(6),
    gateOff: port(7),
    apache: port(8),
    gateWindowAll: port(9),
    gateOffAll: port(10),
  }
  const stops: (() => Promise<void>)[] = []
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    log('secrets and demo users in a temporary store')
    // The bench's own ports: prepareStack checks they are free (not npm start's defaults).
    const plan = await prepareStack({
      persistTo: join(dir, 'state'),
      secrets: { gate: join(dir, 'gate.env'), authority: join(dir, 'authority.env') },
      gatePort: ports.gateWindow,
      authorityPort: ports.authority,
      originPort: ports.origin,
    })
    const bundles = await bundleWorkers(join(dir, 'bundles'), CONFIGS)
    log('bundled the workers (wrangler deploy --dry-run)')

    const stack = stackWorkers(plan, {
      // Row (d) starts thousands of initial authentications a minute from one address; the
      // default brake (60 a minute per client) would answer all but 60 of them with 429.
      BRAKE_AUTHORITY_PER_MINUTE: '100000000',
      // And all of them for one user: an admitted login counts as a failure until it is settled,
      // so 32 logins in flight pass the default thresholds (10, 20, 50) and the rest get 429.
      // Every login is still admitted and settled (the same calls): only the thresholds move.
      ...BENCH_LOGIN_BRAKES,
      // A deployment's default: no operator's console (npm start turns it on).
      CONSOLE_GROUP: '',
    })
    const start = async (worker: Promise<RunningWorker>) => {
      const started = await worker
      stops.push(() => started.stop())
    }
    // The bench's own origin (bench/workers/origin): the same answer to every row, where the demo
    // origin would verify each assertion and echo it back, costs only gate rows would pay.
    const origin = { ...stack.origin, config: CONFIGS.origin, script: bundles.origin, vars: {} }
    await start(startWorkerd('origin', [origin], { dir }))
    await start(startMiniflare({ ...stack.authority, script: bundles.authority }))

    const decisions = new DecisionTally()
    const originUrl = `http://127.0.0.1:${ports.origin}`
    /** Durable Object storage of its own per worker; the tmpfs row's in RAM. */
    const storage = (name: string, tmpfs = false) => {
      if (!tmpfs || !existsSync(TMPFS)) return join(dir, 'do', name)
      const path = mkdtempSync(join(TMPFS, `digest-gate-bench-${name}-`))
      stops.push(async () => rmSync(path, { recursive: true, force: true }))
      return path
    }
    /** At the default LOG_LEVEL (`logins`) unless `logAll`: then a line per request, counted. */
    const gate = (
      name: string,
      port: number,
      replay: string,
      { tmpfs = false, logAll = false } = {}
    ): WorkerSpec => ({
      ...stack.gate,
      name,
      config: CONFIGS.gate,
      script: bundles.gate,
      port,
      persistTo: storage(name, tmpfs),
      vars: { ...stack.gate.vars, REPLAY_MODE: replay, LOG_LEVEL: logAll ? 'all' : 'logins' },
    })
    const edgeWorkers: WorkerSpec[] = [
      {
        name: 'pass-through',
        config: CONFIGS.passThrough,
        script: bundles.passThrough,
        port: ports.passThrough,
        vars: { ORIGIN_URL: originUrl },
      },
      {
        name: 'pass-through-do',
        config: CONFIGS.passThroughDo,
        script: bundles.passThroughDo,
        port: ports.passThroughDo,
        vars: { ORIGIN_URL: originUrl },
        persistTo: storage('pass-through-do'),
      },
      {
        name: 'basic-auth',
        config: CONFIGS.basicAuth,
        script: bundles.basicAuth,
        port: ports.basicAuth,
        vars: {
          ORIGIN_URL: originUrl,
          BASIC_USER: BENCH_USER.username,
          BASIC_PASSWORD: BENCH_USER.password,
        },
      },
      gate('gate-window', ports.gateWindow, 'window'),
      // The same gate with its Durable Objects' files on tmpfs: an fsync per nc record costs
      // nothing there (docs/performance.md, "Durable Object writes").
      gate('gate-window-tmpfs', ports.gateWindowTmpfs, 'window', { tmpfs: true }),
      gate('gate-off', ports.gateOff, 'off'),
      gate('gate-window-all', ports.gateWindowAll, 'window', { logAll: true }),
      gate('gate-off-all', ports.gateOffAll, 'off', { logAll: true }),
    ]
    const edge = startWorkerd('edge', edgeWorkers, {
      dir,
      onLine: decisions.onLine,
      inspectorPort: options.inspectorPort,
      // BENCH_V8_FLAGS: V8's flags of the edge process instead of the default ones ("" for none).
      v8Flags: process.env.BENCH_V8_FLAGS?.split(' ').filter(Boolean),
    })
    await start(edge)
    const edgeWorker = await edge
    log(
      `workerd: origin :${ports.origin}, edge :${ports.passThrough}-:${ports.gateOff}, :${ports.gateWindowAll}-:${ports.gateOffAll}; authority :${ports.authority}`
    )

    let apacheServer: ApacheServer | undefined
    let apacheSkipped: string | undefined
    if (!options.apache) apacheSkipped = 'BENCH_APACHE=0'
    else if (!ensureApache(join(PROJECT_ROOT, 'bench', 'setup-apache.sh'), log)) {
      apacheSkipped = 'apache2 is not installed and could not be installed'
    } else {
      // Its own directory: Apache's children (www-data) cannot enter the bench's private one.
      const apacheDir = mkdtempSync(join(tmpdir(), 'digest-gate-bench-apache-'))
      stops.push(async () => rmSync(apacheDir, { recursive: true, force: true }))
      apacheServer = await startApache({
        dir: apacheDir,
        port: ports.apache,
        originPort: ports.origin,
        realm: REALM,
        ...BENCH_USER,
      })
      const started = apacheServer
      stops.push(() => started.stop())
      log(`apache ${apacheServer.version} :${ports.apache}`)
    }

    return {
      ports,
      bundles,
      decisions,
      apache: apacheServer,
      apacheSkipped,
      edgePid: () => edgeWorker.process().pid,
      async authorityVerifications() {
        const res = await fetch(`http://127.0.0.1:${ports.authority}/metrics`, {
          headers: {
            Authorization: `Bearer ${readDotenv(plan.secrets.authority).get('METRICS_TOKEN')}`,
          },
        })
        const text = await res.text()
        let total = 0
        for (const m of text.matchAll(/^authority_verify_total\{[^}]*\}\s+(\d+)/gm)) {
          total += Number(m[1])
        }
        return total
      },
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}

/** What a scratch stack started: its plan and workers, and how to start and stop more. */
export interface ScratchStack {
  plan: Awaited<ReturnType<typeof prepareStack>>
  stack: ReturnType<typeof stackWorkers>
  /** The bundles by name: `origin`, `authority` and each of the gates asked for. */
  bundles: Record<string, string>
  authority: RunningWorker
  /** Starts a worker that `stop` stops. */
  start(worker: Promise<RunningWorker>): Promise<RunningWorker>
  /** Stops everything started, last first (the directory stays the caller's). */
  stop(): Promise<void>
}

/**
 * A bench tool's own stack in `dir` for comparing gate builds: temporary secrets and demo users,
 * the bench's origin (bench/workers/origin) on plain workerd and the authority on Miniflare,
 * started; the gates in `gates` (name → wrangler.toml) bundled for the caller to start, with
 * `gateVars` over the stack's wiring (default: no operator's console, as deployed).
 */
export async function startScratchStack(
  dir: string,
  ports: { origin: number; authority: number; gate: number },
  gates: Record<string, string>,
  gateVars: Record<string, string> = { CONSOLE_GROUP: '' }
): Promise<ScratchStack> {
  const stops: (() => Promise<void>)[] = []
  const start = async (worker: Promise<RunningWorker>) => {
    const started = await worker
    stops.push(() => started.stop())
    return started
  }
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {})
  }
  try {
    const plan = await prepareStack({
      persistTo: join(dir, 'state'),
      secrets: { gate: join(dir, 'gate.env'), authority: join(dir, 'authority.env') },
      originPort: ports.origin,
      authorityPort: ports.authority,
      gatePort: ports.gate,
    })
    const bundles = await bundleWorkers(join(dir, 'bundles'), {
      origin: CONFIGS.origin,
      authority: CONFIGS.authority,
      ...gates,
    })
    const stack = stackWorkers(plan, gateVars)
    // The same small answer to every request: the demo origin's assertion checks are not the gate's.
    const origin = { ...stack.origin, config: CONFIGS.origin, script: bundles.origin, vars: {} }
    await start(startWorkerd('origin', [origin], { dir }))
    const authority = await start(startMiniflare({ ...stack.authority, script: bundles.authority }))
    return { plan, stack, bundles, authority, start, stop }
  } catch (error) {
    await stop()
    throw error
  }
}
