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
  /**
   * Calls to the context and brake stores (with Durable Objects, each is one object call, or two
   * for an establish and a brake admission).
   */
  contextCalls: number
  latencyMs: number
}

export function logDecision(entry: DecisionLog): void {
  console.log(JSON.stringify(entry))
}
