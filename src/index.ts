import { DurableObject } from 'cloudflare:workers'
export class SecurityContext extends DurableObject<Env> {}
export class UserContexts extends DurableObject<Env> {}
export class Brake extends DurableObject<Env> {}
export default { fetch: () => new Response('ok') } satisfies ExportedHandler<Env>
