import { DurableObject } from 'cloudflare:workers'
export class SecurityContext extends DurableObject<Env> {}
export default { fetch: () => new Response('ok') } satisfies ExportedHandler<Env>
