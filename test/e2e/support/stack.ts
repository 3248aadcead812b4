/**
 * Stack helpers for test files that need processes of their own (fault suites: stopping the
 * authority, restarting a gate on its persist directory). The shared stack of the global setup is
 * never stopped by a test; these start extra workers on free ports instead.
 */
import { mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { type RunningWorker, startWranglerDev } from '../../../scripts/stack/launcher.ts'
import { CONFIGS } from '../../../scripts/stack/paths.ts'
import { freePort, freePorts } from '../../../scripts/stack/ports.ts'
import {
  GATE_READY_PATH,
  type Stack,
  type StackOptions,
  startStack,
} from '../../../scripts/stack/stack.ts'
import { e2e } from './context.ts'

const verbose = process.env.E2E_VERBOSE === '1'

/**
 * A gate of its own (wrangler dev, free port) in front of the shared authority and origin, with
 * the shared secrets and its own persist directory: `restart()` keeps its Durable Objects.
 */
export async function startOwnGate(
  name: string,
  vars: Record<string, string> = {}
): Promise<RunningWorker> {
  const context = e2e()
  return startWranglerDev(
    {
      name,
      config: CONFIGS.gate,
      port: await freePort(),
      persistTo: mkdtempSync(join(context.runDir, `${name}-`)),
      envFile: context.secrets.gate,
      vars: { ...context.wiringVars, ...vars },
      readyPath: GATE_READY_PATH,
    },
    { print: verbose, logDir: context.logDir, registryPath: context.registryPath }
  )
}

/**
 * A whole stack of its own (authority, origin, gate; demo users seeded) in a fresh directory of
 * the run: for suites that stop or restart the authority. Stop it in afterAll.
 */
export async function startOwnStack(
  name: string,
  options: Pick<StackOptions, 'gateVars'> = {}
): Promise<Stack> {
  const context = e2e()
  const dir = mkdtempSync(join(context.runDir, `${name}-`))
  const [gatePort, authorityPort, originPort] = (await freePorts(3)) as [number, number, number]
  return startStack({
    gatePort,
    authorityPort,
    originPort,
    persistTo: join(dir, 'state'),
    secrets: { gate: join(dir, 'gate.env'), authority: join(dir, 'authority.env') },
    gateVars: options.gateVars,
    quiet: !verbose,
    logDir: join(dir, 'logs'),
    registryPath: join(dir, 'registry'),
  })
}
