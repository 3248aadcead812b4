/**
 * urllib.request of Debian's Python (3.11), with HTTPDigestAuthHandler: reads the last `algorithm`
 * of a folded challenge line and computes MD5 only (any other algorithm raises). It is the
 * MD5-only client that reads the last challenge: the gate keeps MD5 last for it, whatever the
 * configured order.
 */
import { join } from 'node:path'
import { PROJECT_ROOT } from '../../scripts/stack/paths.ts'
import { type ClientAdapter, describeClientSuite } from './support/client-suite.ts'
import { run } from './support/run.ts'

// Debian's interpreter, as for python3-requests.
const PYTHON = '/usr/bin/python3'
const CLIENT = join(PROJECT_ROOT, 'test', 'e2e', 'clients', 'urllib_client.py')

const adapter: ClientAdapter = {
  id: 'python-urllib',
  async version() {
    const result = await run(PYTHON, ['-c', 'import sys; print(sys.version.split()[0])'])
    return `Python ${result.stdout.trim()} urllib.request`
  },
  async get(url, credentials) {
    const result = await run(PYTHON, [CLIENT], {
      input: JSON.stringify({
        user: credentials?.user ?? null,
        password: credentials?.password,
        url,
      }),
    })
    if (result.code !== 0) throw new Error(`urllib client failed:\n${result.stderr}`)
    const answer = JSON.parse(result.stdout) as { status: number; body: string; error?: string }
    return { status: answer.status, body: answer.body, clientError: answer.error }
  },
}

describeClientSuite(
  adapter,
  {
    default: true,
    'MD5,SHA-256': true,
    'SHA-256': 'urllib.request computes MD5 only: raises ValueError',
    MD5: true,
    'SHA-256-sess': 'urllib.request computes MD5 only: raises ValueError',
    'MD5-sess': 'urllib.request has no MD5-sess: raises ValueError',
    'SHA-512-256': 'urllib.request computes MD5 only: raises ValueError',
    userhash: true,
  },
  {
    algorithm: { default: 'MD5', 'MD5,SHA-256': 'MD5', MD5: 'MD5', userhash: 'MD5' },
    userhash: false,
  }
)
