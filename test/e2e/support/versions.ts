/** Versions of the tools under test, for docs/interop.md. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../../../scripts/stack/paths.ts'

export function packageVersion(name: string): string {
  const file = join(PROJECT_ROOT, 'node_modules', name, 'package.json')
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
}

export function wranglerVersion(): string {
  return packageVersion('wrangler')
}

/** First line of `<program> <args>` (e.g. `curl --version`), or 'unknown'. */
export function commandVersion(program: string, args: string[]): string {
  try {
    return execFileSync(program, args, { encoding: 'utf8' }).split('\n')[0]?.trim() ?? 'unknown'
  } catch {
    return 'unknown'
  }
}
