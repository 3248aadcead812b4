/** Runs the users CLI (scripts/users.ts, owned by the authority) against a stack's local store. */

import { childEnv, PROJECT_ROOT, USERS_CLI } from './paths.ts'
import { runProgram } from './process.ts'

export interface UsersCliOptions {
  /** The stack's persist directory (same as `wrangler dev --persist-to`). */
  persistTo: string
  /** Written to the CLI's stdin (e.g. the password line of `add`). */
  input?: string
}

/** Runs `node scripts/users.ts <args…> --persist-to <dir>`; resolves with its stdout. */
export async function runUsersCli(args: string[], options: UsersCliOptions): Promise<string> {
  const result = await runProgram(
    process.execPath,
    [USERS_CLI, ...args, '--persist-to', options.persistTo],
    {
      cwd: PROJECT_ROOT,
      env: childEnv(),
      input: options.input,
    }
  )
  if (result.code !== 0) {
    throw new Error(
      `users ${args[0] ?? ''} failed (exit ${result.code}):\n${result.stderr || result.stdout}`
    )
  }
  return result.stdout
}

/** Creates the demo users if they are missing (the CLI's seed-demo is idempotent). */
export function seedDemoUsers(options: UsersCliOptions): Promise<string> {
  return runUsersCli(['seed-demo'], options)
}
