/**
 * Everything the bench measures, started on this machine on free 127.0.0.1 ports, with storage,
 * secrets and users of its own in a temporary directory (the `npm start` store is not touched):
 * - origin process (plain workerd): the demo origin, which every row forwards to;
 * - edge process (plain workerd): the bench workers (a, a', b) and two gates (replay window, off);
 * - the reference authority on Miniflare (its KV store needs Miniflare's implementation);
 * - Apache httpd with mod_auth_digest, when available.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../../scripts/lib/stack-paths.ts'
import { freePorts } from '../../scripts/lib/stack-ports.ts'
import { readDotenv } from '../../scripts/lib/stack-secrets.ts'
import { bundleWorker } from '../../scripts/lib/stack-serve.ts'
import { prepareStack } from '../../scripts/lib/stack-start.ts'
import { type ApacheServer, ensureApache, startApache } from './apache.ts'
import { DecisionTally } from './decisions.ts'
import type { Credentials } from './requests.ts'
import { type ServedWorker, serveWorker } from './workerd.ts'
import type { EdgeWorker } from './workerd-config.ts'
import { startWorkerd, type WorkerdProcess } from './workerd-process.ts'

/** RAM-backed filesystem (Linux); without it the tmpfs row runs on the disk like the others. */
const TMPFS = '/dev/shm'

export const BENCH_USER: Credentials = { username: 'bob', password: 'builder' }
export const REALM = 'digest-gate'

const CONFIGS = {
  // BENCH_GATE_CONFIG: another gate build (e.g. a patched copy of the project) for an A/B run.
  gate: process.env.BENCH_GATE_CONFIG ?? join(PROJECT_ROOT, 'wrangler.toml'),
  authority: join(PROJECT_ROOT, 'authority', 'wrangler.toml'),
  origin: join(PROJECT_ROOT, 'demo-origin', 'wrangler.toml'),
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
  }
  /** Decision-log counts of both gates (only the gates log in the edge process). */
  readonly decisions: DecisionTally
  readonly apache: ApacheServer | undefined
  /** Why the Apache rows are missing, when they are. */
  readonly apacheSkipped: string | undefined
  /** The bundles that run, by worker (their .map beside them). */
  readonly bundles: Record<string, string>
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
  const free = await freePorts(9)
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
  }
  const { origin, authority, passThrough, passThroughDo, basicAuth, gateWindow, gateOff } = ports
  const secrets = { gate: join(dir, 'gate.env'), authority: join(dir, 'authority.env') }
  const persistTo = join(dir, 'state')
  const stops: (() => Promise<void>)[] = []
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    log('secrets and demo users in a temporary store')
    // The bench's own ports: prepareStack checks they are free (not npm start's defaults).
    await prepareStack({
      persistTo,
      secrets,
      seed: true,
      gatePort: gateWindow,
      authorityPort: authority,
      originPort: origin,
    })

    // In parallel: each run is mostly wrangler's start-up, and the bench wants the time.
    const entries = Object.entries(CONFIGS) as [keyof typeof CONFIGS, string][]
    const scripts = await Promise.all(
      entries.map(([name, config]) => {
        const outdir = join(dir, 'bundles', name)
        mkdirSync(outdir, { recursive: true })
        return bundleWorker(config, outdir)
      })
    )
    const bundles = Object.fromEntries(entries.map(([name], i) => [name, scripts[i]])) as Record<
      keyof typeof CONFIGS,
      string
    >
    log('bundled the workers (wrangler deploy --dry-run)')

    const originUrl = `http://127.0.0.1:${origin}`
    const originProcess = await startWorkerd({
      workers: [
        { service: 'origin', config: CONFIGS.origin, script: bundles.origin, port: origin },
      ],
      configFile: join(dir, 'origin.capnp'),
      onLog: () => {},
    })
    stops.push(() => originProcess.stop())

    const authorityWorker: ServedWorker = await serveWorker({
      config: CONFIGS.authority,
      script: bundles.authority,
      port: authority,
      persistTo,
      envFile: secrets.authority,
    })
    stops.push(() => authorityWorker.stop())

    const decisions = new DecisionTally()
    const gateVars = (replay: string): Record<string, string> => ({
      ...Object.fromEntries(readDotenv(secrets.gate)),
      ORIGIN_URL: originUrl,
      AUTHORITY_URL: `http://127.0.0.1:${authority}/v1/verify`,
      REPLAY_MODE: replay,
      // Row (d) starts thousands of initial authentications a minute from one address; the
      // default brake (60 a minute per client) would answer all but 60 of them with 429.
      BRAKE_AUTHORITY_PER_MINUTE: '100000000',
    })
    const storage = (name: string) => {
      const path = join(dir, 'do', name)
      mkdirSync(path, { recursive: true })
      return path
    }
    const tmpfsStorage = (name: string) => {
      if (!existsSync(TMPFS)) return storage(name)
      const path = mkdtempSync(join(TMPFS, `digest-gate-bench-${name}-`))
      stops.push(async () => rmSync(path, { recursive: true, force: true }))
      return path
    }
    const edgeWorkers: EdgeWorker[] = [
      {
        service: 'pass-through',
        config: CONFIGS.passThrough,
        script: bundles.passThrough,
        port: passThrough,
        vars: { ORIGIN_URL: originUrl },
      },
      {
        service: 'pass-through-do',
        config: CONFIGS.passThroughDo,
        script: bundles.passThroughDo,
        port: passThroughDo,
        vars: { ORIGIN_URL: originUrl },
        storage: storage('pass-through-do'),
      },
      {
        service: 'basic-auth',
        config: CONFIGS.basicAuth,
        script: bundles.basicAuth,
        port: basicAuth,
        vars: {
          ORIGIN_URL: originUrl,
          BASIC_USER: BENCH_USER.username,
          BASIC_PASSWORD: BENCH_USER.password,
        },
      },
      {
        service: 'gate-window',
        config: CONFIGS.gate,
        script: bundles.gate,
        port: gateWindow,
        vars: gateVars('window'),
        storage: storage('gate-window'),
      },
      {
        // The same gate with its Durable Objects' files on tmpfs: an fsync per nc record costs
        // nothing there (docs/performance.md, "Durable Object writes").
        service: 'gate-window-tmpfs',
        config: CONFIGS.gate,
        script: bundles.gate,
        port: ports.gateWindowTmpfs,
        vars: gateVars('window'),
        storage: tmpfsStorage('gate-window-tmpfs'),
      },
      {
        service: 'gate-off',
        config: CONFIGS.gate,
        script: bundles.gate,
        port: gateOff,
        vars: gateVars('off'),
        storage: storage('gate-off'),
      },
    ]
    const edge: WorkerdProcess = await startWorkerd({
      workers: edgeWorkers,
      configFile: join(dir, 'edge.capnp'),
      onLog: decisions.onLog,
      inspectorPort: options.inspectorPort,
    })
    stops.push(() => edge.stop())
    log(`workerd: origin :${origin}, edge :${passThrough}-:${gateOff}; authority :${authority}`)

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
        originPort: origin,
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
      async authorityVerifications() {
        const res = await fetch(`http://127.0.0.1:${authority}/metrics`, {
          headers: {
            Authorization: `Bearer ${readDotenv(secrets.authority).get('METRICS_TOKEN')}`,
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
