/**
 * Debian's wget (1.21.3): knows MD5 and MD5-sess only. Of several header lines it takes the last;
 * of a folded line (workerd's) it reads the first challenge only, where the gate puts MD5 for it.
 * Sends nc=00000001 with a fresh cnonce, and never sends credentials before a challenge.
 */
import { type ClientAdapter, describeClientSuite } from './support/client-suite.ts'
import { run } from './support/run.ts'
import { commandVersion } from './support/versions.ts'

const WGET = '/usr/bin/wget'

/** wget prints the response status lines on stderr with --server-response; the last one counts. */
function finalStatus(stderr: string): number {
  const statuses = [...stderr.matchAll(/^\s*HTTP\/[\d.]+ (\d{3})/gm)].map((m) => Number(m[1]))
  const last = statuses.at(-1)
  if (last === undefined) throw new Error(`wget printed no status:\n${stderr}`)
  return last
}

const adapter: ClientAdapter = {
  id: 'wget',
  version: () => commandVersion(WGET, ['--version']).replace(/ built on.*$/, ''),
  async get(url, credentials) {
    const auth = credentials
      ? [`--user=${credentials.user}`, `--password=${credentials.password}`]
      : []
    const result = await run(WGET, [
      '--server-response',
      '--content-on-error',
      '--tries=1',
      '--timeout=20',
      '--no-config',
      '-O',
      '-',
      ...auth,
      url,
    ])
    return { status: finalStatus(result.stderr), body: result.stdout }
  },
}

describeClientSuite(
  adapter,
  {
    default: true,
    'MD5,SHA-256': true,
    'SHA-256': 'wget computes MD5 whatever the challenge says',
    MD5: true,
    'SHA-256-sess': 'wget computes MD5 whatever the challenge says',
    'MD5-sess': true,
    'SHA-512-256': 'wget computes MD5 whatever the challenge says',
    userhash: true,
  },
  {
    algorithm: {
      default: 'MD5',
      'MD5,SHA-256': 'MD5',
      MD5: 'MD5',
      'MD5-sess': 'MD5-sess',
      userhash: 'MD5',
    },
    userhash: false,
  }
)
