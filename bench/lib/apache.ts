/**
 * Row (e): Debian's Apache httpd with mod_auth_digest (MD5, qop=auth) on the gate's realm, as a
 * reverse proxy to the same demo origin, in a throwaway ServerRoot of its own on 127.0.0.1.
 * Two protected prefixes share one server: /nc-on/ (AuthDigestNcCheck On) and /nc-off/.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { launch } from '../../scripts/stack/launcher.ts'

export const APACHE_BIN = '/usr/sbin/apache2'
const MODULES = '/usr/lib/apache2/modules'
export const NC_ON_PREFIX = '/nc-on'
export const NC_OFF_PREFIX = '/nc-off'

export interface ApacheServer {
  readonly version: string
  stop(): Promise<void>
}

/** Installs Apache through bench/setup-apache.sh when missing; false when it cannot. */
export function ensureApache(setupScript: string, log: (message: string) => void): boolean {
  if (existsSync(APACHE_BIN) && existsSync(join(MODULES, 'mod_auth_digest.so'))) return true
  log('installing Debian apache2 (bench/setup-apache.sh)')
  const run = spawnSync('bash', [setupScript], { stdio: 'inherit' })
  return run.status === 0 && existsSync(APACHE_BIN)
}

export function apacheVersion(): string {
  const out = spawnSync(APACHE_BIN, ['-v'], { encoding: 'utf8' }).stdout ?? ''
  return /Server version:\s*(\S+)/.exec(out)?.[1] ?? 'unknown'
}

function apacheConfig(o: {
  dir: string
  port: number
  originPort: number
  realm: string
  htdigest: string
  user: string | undefined
}): string {
  const modules = [
    'mpm_event',
    'authn_core',
    'authn_file',
    'authz_core',
    'authz_user',
    'auth_digest',
    'proxy',
    'proxy_http',
  ]
  const protectedPrefix = (prefix: string, ncCheck: 'On' | 'Off') => `
<Location "${prefix}/">
  AuthType Digest
  AuthName "${o.realm}"
  AuthDigestProvider file
  AuthUserFile "${o.htdigest}"
  AuthDigestQop auth
  AuthDigestAlgorithm MD5
  AuthDigestNcCheck ${ncCheck}
  Require valid-user
  ProxyPass "http://127.0.0.1:${o.originPort}/"
</Location>`
  return `# digest-gate bench: Apache mod_auth_digest in front of the demo origin (generated).
ServerRoot "${o.dir}"
ServerName 127.0.0.1
Listen 127.0.0.1:${o.port}
PidFile "${o.dir}/httpd.pid"
DefaultRuntimeDir "${o.dir}/run"
ErrorLog "${o.dir}/error.log"
LogLevel warn
${o.user ? `User ${o.user}\nGroup ${o.user}` : ''}
${modules.map((m) => `LoadModule ${m}_module ${MODULES}/mod_${m}.so`).join('\n')}

# Debian's mpm_event defaults, keep-alive without a per-connection request limit (as the workers).
StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30

# An access log, as any production Apache keeps (the gate logs one line per decision too).
LogFormat "%h %l %u %t \\"%r\\" %>s %b" common
CustomLog "${o.dir}/access.log" common

# Room for many clients' nc state (the 1000-byte default holds about a dozen).
AuthDigestShmemSize 1048576
${protectedPrefix(NC_ON_PREFIX, 'On')}
${protectedPrefix(NC_OFF_PREFIX, 'Off')}
`
}

export async function startApache(o: {
  dir: string
  port: number
  originPort: number
  realm: string
  username: string
  password: string
}): Promise<ApacheServer> {
  mkdirSync(join(o.dir, 'run'), { recursive: true })
  // Apache's children drop root for this user: they must be able to read the password file.
  chmodSync(o.dir, 0o755)
  const htdigest = join(o.dir, 'htdigest')
  const ha1 = createHash('md5').update(`${o.username}:${o.realm}:${o.password}`).digest('hex')
  writeFileSync(htdigest, `${o.username}:${o.realm}:${ha1}\n`, { mode: 0o644 })
  const runAs = userInfo().uid === 0 ? 'www-data' : undefined
  const conf = join(o.dir, 'httpd.conf')
  writeFileSync(conf, apacheConfig({ ...o, htdigest, user: runAs }))
  const check = spawnSync(APACHE_BIN, ['-t', '-f', conf], { encoding: 'utf8' })
  if (check.status !== 0) throw new Error(`apache config test failed:\n${check.stderr}`)
  const errorLog = join(o.dir, 'error.log')
  try {
    const server = await launch('apache', [`http://127.0.0.1:${o.port}/`], () => ({
      command: APACHE_BIN,
      args: ['-f', conf, '-DFOREGROUND'],
      cwd: o.dir,
    }))
    return { version: apacheVersion(), stop: () => server.stop() }
  } catch (error) {
    const log = existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : ''
    throw new Error(`apache did not start: ${(error as Error).message}\n${log}`)
  }
}
