/**
 * `npm run build`: compile the package's entries (src/entries/*) and what they import to dist/ as
 * ES modules with declarations. dist/ is emptied first, so a module no entry reaches any more
 * cannot linger in the tarball.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../stack/paths.ts'
import { runProgram } from '../stack/process.ts'

rmSync(join(PROJECT_ROOT, 'dist'), { recursive: true, force: true })
const tsc = await runProgram(
  join(PROJECT_ROOT, 'node_modules', '.bin', 'tsc'),
  ['-p', join(PROJECT_ROOT, 'tsconfig.build.json')],
  { cwd: PROJECT_ROOT }
)
if (tsc.code !== 0) {
  process.stderr.write(`tsc -p tsconfig.build.json failed:\n${tsc.stdout}${tsc.stderr}`)
  process.exit(1)
}
