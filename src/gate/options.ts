/**
 * The one configuration of digestAuth(): its options, documented, and the one table of their
 * defaults (DEFAULTS), which the gate worker's variables (config.ts) fall back to as well.
 */
import type { Context } from 'hono'
import type { Principal } from '../authority-protocol/v1.ts'
import type { ReplayMode } from '../digest/nc-window.ts'
import type { TokenKeys } from '../digest/tokens.ts'
import type { AlgorithmName, HashName, Qop } from '../digest/types.ts'
import type { AuthorityClient } from './authority-client.ts'
import { type BrakePolicy, type BrakeStore, DEFAULT_BRAKE_POLICY } from './brake-policy.ts'
import type { Binding, ContextStore } from './context-types.ts'
import type { DecisionLog, LogLevel } from './decision-log.ts'

export type MessageOption =
  | string
  | object
  | ((c: Context) => string | object | Promise<string | object>)

/** A user of the simple form: a password, or a stored H(name:realm:password) for one hash. */
export type LocalUser =
  | string
  | { password: string; groups?: string[] }
  | { ha1: string; hash?: HashName; groups?: string[] }

/**
 * The users of the simple form: name → password (or user), or a function that looks a name up
 * (it may be async; undefined = no such user; a throw = a fault, 503). With a function, `userhash`
 * cannot be offered: a hashed name cannot be looked up. An empty password never logs in (a
 * record holding one is refused when the middleware is built).
 */
export type LocalUsers =
  | Readonly<Record<string, LocalUser>>
  | ((name: string, realm: string) => LocalUser | undefined | Promise<LocalUser | undefined>)

interface CommonOptions {
  /** The protection space shown to users; their client must answer for this realm. */
  realm: string
  /**
   * This gate's identity, written into every nonce (1-64 bytes); the authority checks it.
   * @default 'gate'
   */
  serverId?: string
  /**
   * HMAC keys of nonces and opaques (secrets of at least 16 characters of randomness): current,
   * and previous during a rotation. When none are given a random key is made per middleware:
   * nonces then only verify in the process (isolate) that issued them — give keys wherever more
   * than one process serves the realm.
   */
  nonceKeys?: TokenKeys
  /**
   * Where security contexts live. Default: this process's memory (`memoryContexts()`):
   * replay protection per process; on Cloudflare give `durableObjectContexts()` from
   * `digest-gate/cloudflare`, shared by every isolate and location.
   */
  contexts?: ContextStore
  /**
   * Challenges offered, one per algorithm, all sharing one nonce. Clients recognised by their
   * User-Agent find the strongest they support where they read; others get this order, which
   * should end in MD5 (every client can answer it).
   * @default ['SHA-256', 'MD5']
   */
  algorithms?: AlgorithmName[]
  /** qop values offered; [] = the RFC 2069 form (no qop). @default ['auth'] */
  qop?: Qop[]
  /** Offer `userhash=true`. @default false */
  userhash?: boolean
  /** Seconds a nonce is valid; then `stale=true`. @default 300 */
  nonceLifetime?: number
  /** Send `nextnonce` when a nonce has less than this many seconds left. @default 30 */
  nextnonceLead?: number
  /**
   * `window`: each nc once, in any order within the window; `strict`: nc must increase; `off`: no
   * nc state — replays are accepted for the nonce lifetime, by design.
   * @default 'window'
   */
  replay?: ReplayMode
  /** nc window size for `replay: 'window'`: a multiple of 8, 64 to 65536. @default 128 */
  windowSize?: number
  /** The `uri` directive must name the request target (400 if not). @default true */
  validateUri?: boolean
  /** Seconds a security context may sit unused. @default 1800 */
  idleTimeout?: number
  /** Seconds a security context lives at most. @default 43200 */
  maxLifetime?: number
  /** Seconds after which the authority re-verifies a context's user. @default 600 */
  revalidateAfter?: number
  /**
   * Seconds past a due revalidation during which a session keeps working when the authority
   * cannot be reached (a denial still ends it at once). @default 3600
   */
  revalidateGrace?: number
  /** Largest body hashed for `qop=auth-int`, in bytes; larger ones get 413. @default 1048576 */
  maxAuthIntBody?: number
  /**
   * Seconds a security context's Durable Object goes without requests before it leaves memory,
   * its nc state written first (at least 2, the quiet spell that writes it); `false`: when the
   * runtime evicts it (workerd: after 10 s). Durable Object contexts only. For a gate on plain
   * workerd, whose allocator keeps what a resident object used (`npm run serve` sets 2); on
   * Cloudflare the platform owns that memory and logs each reset as an error. @default false
   */
  contextReleaseAfter?: number | false
  /**
   * Bind each context to the channel it was established on: `address` (the client's brake
   * bucket) or `client-cert` (the mTLS client certificate's fingerprint; no certificate, no
   * login). A request from another channel gets a fresh 401, never verified. @default 'none'
   */
  binding?: Binding
  /**
   * CORS preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) pass to the next
   * handler unauthenticated: browsers never send credentials on them, and the origin (or a CORS
   * middleware after this one) owns its CORS policy. Any other `OPTIONS` is authenticated.
   * @default true
   */
  passPreflights?: boolean
  /**
   * Brakes against password guessing (growing waits, never a lockout). `false` turns them off.
   * Default: on, counted in this process's memory; on Cloudflare give `durableObjectBrakes()`.
   */
  brakes?: { store?: BrakeStore; policy?: Partial<BrakePolicy> } | false
  /** The client's address, for the brakes. Default: CF-Connecting-IP, else X-Real-IP. */
  clientIp?: (c: Context) => string
  /**
   * After verification, before the handler: may this principal go on? false = 403. The gate
   * worker checks its route groups here.
   */
  authorize?: (c: Context, principal: Principal) => boolean | Promise<boolean>
  onAuthSuccess?: (c: Context, principal: Principal) => void | Promise<void>
  /**
   * Receives one record per decision, with the request's context. Default: a JSON line on the
   * console, at `logLevel`.
   */
  onDecision?: (entry: DecisionLog, c: Context) => void
  /**
   * The default decision log's level: `all`; `logins`: all but the requests verified at the
   * edge from a cached key; `denials`: refusals and faults only; `off`. Refusals go to
   * console.warn, faults to console.error. @default 'logins'
   */
  logLevel?: LogLevel
  /** Body of 401 answers. @default { error: 'unauthorized', message } */
  unauthorizedMessage?: MessageOption
  /** Body of 400 answers. @default { error: 'invalid_request', message } */
  invalidRequestMessage?: MessageOption
}

/**
 * Options of digestAuth(). Exactly one of `users` (the simple form: the middleware verifies
 * logins itself) or `authority` (a separate authority verifies each user's first login and hands
 * back the session key: the Microsoft Digest model).
 */
export type DigestAuthOptions = CommonOptions &
  (
    | {
        /** The simple form's users. */
        users: LocalUsers
        authority?: never
      }
    | {
        users?: never
        /** Who verifies initial authentications (httpAuthority()). */
        authority: AuthorityClient
      }
  )

/** The one table of defaults: digestAuth() and the gate worker's variables both use it. */
export const DEFAULTS = {
  serverId: 'gate',
  algorithms: ['SHA-256', 'MD5'] as AlgorithmName[],
  qop: ['auth'] as Qop[],
  userhash: false,
  nonceLifetime: 300,
  nextnonceLead: 30,
  replay: 'window' as ReplayMode,
  windowSize: 128,
  validateUri: true,
  idleTimeout: 1800,
  maxLifetime: 43_200,
  revalidateAfter: 600,
  revalidateGrace: 3600,
  maxAuthIntBody: 1024 * 1024,
  contextReleaseAfter: false as number | false,
  binding: 'none' as Binding,
  passPreflights: true,
  logLevel: 'logins' as LogLevel,
  brakePolicy: DEFAULT_BRAKE_POLICY,
  /** Wrong answers from one bucket a context verifies before the brakes must admit the next. */
  freeMismatchesWithBrakes: 1,
  /** Without brakes: wrong answers from one bucket before the context refuses it for a while. */
  maxContextFailures: 5,
  retryAfterAuthorityFault: 10,
  /** The gate worker's own settings (config.ts). */
  worker: {
    authorityTimeoutMs: 5000,
    originTimeoutMs: 30_000,
    identityHeaders: {
      user: 'x-auth-user',
      groups: 'x-auth-groups',
      assertion: 'x-auth-assertion',
    },
    /**
     * What other authentication proxies tell their origins (Authelia and Authentik's Remote-*,
     * oauth2-proxy's X-Forwarded-* and X-Auth-Request-*, Grafana's X-WEBAUTH-USER, Cloudflare
     * Access): an origin configured for one would believe a client that sent them.
     */
    stripHeaders: [
      'remote-user',
      'remote-groups',
      'remote-email',
      'remote-name',
      'x-remote-user',
      'x-forwarded-user',
      'x-forwarded-groups',
      'x-forwarded-email',
      'x-forwarded-preferred-username',
      'x-auth-request-user',
      'x-auth-request-groups',
      'x-auth-request-email',
      'x-auth-request-preferred-username',
      'x-webauth-user',
      'cf-access-authenticated-user-email',
    ],
    brakes: true,
    /** `;` segment parameters in paths: refused unless the origin needs them (routes match without). */
    allowPathParameters: false,
    /** The group whose members may use the operator's console; unset = no console. */
    consoleGroup: undefined as string | undefined,
  },
} as const
