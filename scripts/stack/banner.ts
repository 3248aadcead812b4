/** What `npm start` and `npm run serve` print once the stack answers. */
import { DEMO_USERS } from '../users/demo.ts'

export interface StackUrls {
  gate: string
  authority: string
  origin: string
}

export function banner(urls: StackUrls, mode: string): string {
  const gate = urls.gate
  return [
    '',
    `digest-gate is running: ${mode}`,
    `  gate        ${gate}   Digest-protected (routes: ROUTES in wrangler.toml)`,
    `  authority   ${urls.authority}   reference authority (${urls.authority}/healthz)`,
    `  origin      ${urls.origin}   demo origin: echoes what the gate forwarded`,
    '',
    'Demo users (npm run users -- list):',
    ...DEMO_USERS.map(
      (user) =>
        `  ${`${user.name} / ${user.password}`.padEnd(32)} groups: ${user.groups.join(', ') || '(none)'}`
    ),
    '',
    'Try:',
    `  curl --digest -u alice:wonderland ${gate}/private/hello`,
    `  curl --digest -u bob:builder ${gate}/admin/       # 403: bob is not in group admin`,
    `  curl ${gate}/public/hello                         # public route, no credentials`,
    `  or open ${gate}/private/hello in a browser`,
    `  the operator's console: ${gate}/.digest-gate/console (as alice)`,
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n')
}
