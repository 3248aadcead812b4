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

/**
 * `all`: every line; `logins`: all but the requests verified at the edge from a cached key (each
 * session's start, its revalidations, every refusal and fault); `denials`: refusals and faults
 * only; `off`: nothing. A line costs about as much CPU as the rest of an edge verification, so
 * `all` is for when every request must be logged with its user.
 */
export type LogLevel = 'all' | 'logins' | 'denials' | 'off'

/**
 * What a line records: `fault`s go to console.error, `denial`s to console.warn (so Workers Logs
 * can filter by level), the rest to console.log; `routine` is a request verified at the edge.
 */
export type Severity = 'routine' | 'info' | 'denial' | 'fault'

/** One JSON line, if the level lets it through. */
const LOWEST_WRITTEN: Record<LogLevel, number> = { all: 0, logins: 1, denials: 2, off: 4 }
const RANK: Record<Severity, number> = { routine: 0, info: 1, denial: 2, fault: 3 }

/** Does the level let a line of this severity through? (The caller may skip building it.) */
export function logs(level: LogLevel, severity: Severity): boolean {
  return RANK[severity] >= LOWEST_WRITTEN[level]
}

export function writeLog(level: LogLevel, severity: Severity, record: object): void {
  if (!logs(level, severity)) return
  const line = JSON.stringify(record)
  if (severity === 'fault') console.error(line)
  else if (severity === 'denial') console.warn(line)
  else console.log(line)
}

/**
 * The default decision log at a level: a 5xx is a fault, any other refusal a denial, a request
 * verified at the edge (nothing deferred) routine.
 */
export function decisionLogger(level: LogLevel): (entry: DecisionLog) => void {
  const logger = (entry: DecisionLog) => writeLog(level, severityOf(entry), entry)
  if (!logs(level, 'routine')) quietOnRoutine.add(logger)
  return logger
}

/** Default loggers whose level writes nothing for a routine decision. */
const quietOnRoutine = new WeakSet<object>()

/**
 * Does this decision callback drop every routine record? Then the caller need not build one for
 * each request verified at the edge. Only a default logger says so; any other callback gets all.
 */
export function dropsRoutine(onDecision: object): boolean {
  return quietOnRoutine.has(onDecision)
}

export function severityOf(entry: DecisionLog): Severity {
  if (entry.status >= 500) return 'fault'
  if (entry.status >= 400) return 'denial'
  return entry.outcome === 'verified_at_edge' && entry.reason === undefined ? 'routine' : 'info'
}
