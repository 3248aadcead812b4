/**
 * Verification counters in the Prometheus text format. They live in the isolate's memory: each
 * isolate counts what it served since it started, so a scraper sees per-isolate values that may
 * reset at any time (Workers Logs hold the complete record: one line per verification).
 */
export const VERIFY_RESULTS = [
  'ok',
  'logon_denied',
  'server_mismatch',
  'unsupported_algorithm',
  'invalid',
  'unauthorized_caller',
] as const

export type VerifyResult = (typeof VERIFY_RESULTS)[number]

const counts = new Map<VerifyResult, number>(VERIFY_RESULTS.map((result) => [result, 0]))

export function countVerification(result: VerifyResult): void {
  counts.set(result, (counts.get(result) ?? 0) + 1)
}

export function renderMetrics(): string {
  const lines = [
    '# HELP authority_verify_total Verification requests by result, since this isolate started.',
    '# TYPE authority_verify_total counter',
    ...VERIFY_RESULTS.map(
      (result) => `authority_verify_total{result="${result}"} ${counts.get(result) ?? 0}`
    ),
  ]
  return `${lines.join('\n')}\n`
}
