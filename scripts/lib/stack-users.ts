/** Runs the users CLI (scripts/users.ts, owned by the authority) against a stack's local store. */
import { spawn } from 'node:child_process'
import { childEnv, PROJECT_ROOT, USERS_CLI } from './stack-paths.ts'

export interface UsersCliOptions {
  /** The stack's persist directory (same as `wrangler dev --persist-to`). */
  persistTo: string
  /** Written to the CLI's stdin (e.g. the password line of `add`). */
  input?: string
}

/** Runs `node scripts/users.ts <args…> --persist-to <dir>`; resolves with its stdout. */
export function runUsersCli(args: string[], options: UsersCliOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [USERS_CLI, ...args, '--persist-to', options.persistTo], {
      cwd: PROJECT_ROOT,
      env: childEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    child.stdin.end(options.input ?? '')
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code === 0) resolve(stdout)
      else reject(new Error(`users ${args[0] ?? ''} failed (exit ${code}):\n${stderr || stdout}`))
    })
  })
}

/** Creates the demo users if they are missing (the CLI's seed-demo is idempotent). */
export function seedDemoUsers(options: UsersCliOptions): Promise<string> {
  return runUsersCli(['seed-demo'], options)
}
