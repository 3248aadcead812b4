/**
 * The Durable Object classes type their constructor's `env` as the global `Env` that `wrangler
 * types` writes for a Worker. The package build has no Worker, so `Env` is Cloudflare's own.
 * Not needed once the classes name `Cloudflare.Env` themselves.
 */
interface Env extends Cloudflare.Env {}
