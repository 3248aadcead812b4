/**
 * One structured record per authentication decision (Workers Logs index JSON lines). Never holds
 * passwords, hashes, session keys, responses or the Authorization header.
 */
export type SspiCode =
  | 'SEC_I_CONTINUE_NEEDED'
  | 'SEC_E_OK'
  | 'SEC_I_COMPLETE_NEEDED'
  | 'SEC_E_INVALID_TOKEN'
  | 'SEC_E_LOGON_DENIED'
  | 'SEC_E_INVALID_HANDLE'
  | 'SEC_E_CONTEXT_EXPIRED'
  | 'SEC_E_NO_AUTHENTICATING_AUTHORITY'
  | 'SEC_E_RATE_LIMITED'
  | 'SEC_E_BAD_BINDINGS'

/**
 * `user` is set only once the user is known to exist (a response verified by the authority or a
 * cached key): a name that matched nobody may be a password typed into the wrong field.
 */
export interface DecisionLog {
  event: 'digest-gate.decision'
  outcome: string
  code: SspiCode
  status: number
  method: string
  path: string
  user?: string
  reason?: string
  algorithm?: string
  authorityCalled: boolean
  /** Durable Object calls: security context, user index, brakes. */
  contextCalls: number
  latencyMs: number
}

export function logDecision(entry: DecisionLog): void {
  console.log(JSON.stringify(entry))
}

/** What handling one request has found out so far, for its decision record. */
export interface Trace {
  started: number
  user?: string
  algorithm?: string
  authorityCalled: boolean
  contextCalls: number
  /** The authority could not revalidate the session; it goes on within REVALIDATE_GRACE. */
  deferred?: string
}
