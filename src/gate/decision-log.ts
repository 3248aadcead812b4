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
  /** Cloudflare's request id (`cf-ray`), where present: the line joins the platform's logs. */
  ray?: string
}

/** `all`: every line; `denials`: refusals and faults only; `off`: nothing. */
export type LogLevel = 'all' | 'denials' | 'off'

/** What a line records: `fault`s go to console.error, `denial`s to console.warn (so Workers Logs
 * can filter by level), the rest to console.log. */
export type Severity = 'info' | 'denial' | 'fault'

/** One JSON line, if the level lets it through. */
export function writeLog(level: LogLevel, severity: Severity, record: object): void {
  if (level === 'off' || (level === 'denials' && severity === 'info')) return
  const line = JSON.stringify(record)
  if (severity === 'fault') console.error(line)
  else if (severity === 'denial') console.warn(line)
  else console.log(line)
}

/** The default decision log at a level: a 5xx is a fault, any other refusal a denial. */
export function decisionLogger(level: LogLevel): (entry: DecisionLog) => void {
  return (entry) =>
    writeLog(level, entry.status >= 500 ? 'fault' : entry.status >= 400 ? 'denial' : 'info', entry)
}
