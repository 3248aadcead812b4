/** Runs a client program to completion and captures its output (no shell involved). */
import { type RunResult, runProgram } from '../../../scripts/stack/process.ts'

export type { RunResult }

export async function run(
  command: string,
  args: string[],
  options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}
): Promise<RunResult> {
  try {
    return await runProgram(command, args, { ...options, timeoutMs: options.timeoutMs ?? 30_000 })
  } catch (error) {
    throw new Error(
      `${error instanceof Error ? error.message : String(error)} (run \`npm run e2e:deps\`?)`
    )
  }
}
