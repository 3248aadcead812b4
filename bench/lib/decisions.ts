/**
 * Counts the gate's decision log (src/gate/decision-log.ts: one JSON line per decision), read
 * from workerd's output: decisions, authority calls and security-context Durable Object calls.
 */
export interface DecisionCounts {
  decisions: number
  authorityCalls: number
  contextCalls: number
  /** Decisions by outcome (verified_at_edge, authenticated, challenge, stale, denied, …). */
  outcomes: Record<string, number>
}

export class DecisionTally {
  private counts: DecisionCounts = {
    decisions: 0,
    authorityCalls: 0,
    contextCalls: 0,
    outcomes: {},
  }
  /** Lines that were not decisions (errors, warnings), the latest few, for the report. */
  readonly otherLines: string[] = []

  /** One line of the edge process's output (launcher.ts hands workerd's logs on as text). */
  onLine = (message: string): void => {
    const at = message.indexOf('{"event":"digest-gate.decision"')
    if (at >= 0) {
      try {
        // Refusals and faults are console.warn/error lines: workerd prefixes their level.
        const d = JSON.parse(message.slice(at)) as {
          outcome?: string
          authorityCalled?: boolean
          contextCalls?: number
        }
        this.counts.decisions += 1
        if (d.authorityCalled) this.counts.authorityCalls += 1
        this.counts.contextCalls += d.contextCalls ?? 0
        const outcome = d.outcome ?? 'unknown'
        this.counts.outcomes[outcome] = (this.counts.outcomes[outcome] ?? 0) + 1
        return
      } catch {
        // fall through: keep it as another line
      }
    }
    if (message.trim() === '') return
    this.otherLines.push(message)
    if (this.otherLines.length > 20) this.otherLines.shift()
  }

  snapshot(): DecisionCounts {
    return { ...this.counts, outcomes: { ...this.counts.outcomes } }
  }
}

export function countsBetween(a: DecisionCounts, b: DecisionCounts): DecisionCounts {
  const outcomes: Record<string, number> = {}
  for (const [k, v] of Object.entries(b.outcomes)) {
    const d = v - (a.outcomes[k] ?? 0)
    if (d > 0) outcomes[k] = d
  }
  return {
    decisions: b.decisions - a.decisions,
    authorityCalls: b.authorityCalls - a.authorityCalls,
    contextCalls: b.contextCalls - a.contextCalls,
    outcomes,
  }
}

/** Waits until at least `expected` more decisions than in `from` were counted (or a timeout). */
export async function settle(
  tally: DecisionTally,
  from: DecisionCounts,
  expected: number,
  timeoutMs = 3000
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (tally.snapshot().decisions - from.decisions < expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25))
  }
}
