/**
 * Authority calls, counted where they land: the reference authority's GET /metrics
 * (authority_verify_total{result=…}, per isolate; `wrangler dev` runs one isolate per worker).
 */

/** Every authority_verify_total counter by result. */
export async function verifyCounters(authorityUrl: string): Promise<Map<string, number>> {
  const response = await fetch(`${authorityUrl}/metrics`)
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}`)
  const counters = new Map<string, number>()
  for (const line of (await response.text()).split('\n')) {
    const match = /^authority_verify_total\{result="([^"]+)"\} (\d+)$/.exec(line.trim())
    if (match) counters.set(match[1] as string, Number(match[2]))
  }
  if (counters.size === 0) throw new Error('no authority_verify_total counters in /metrics')
  return counters
}

/** All verifications the authority has served (whatever their result). */
export async function verifyTotal(authorityUrl: string): Promise<number> {
  let total = 0
  for (const count of (await verifyCounters(authorityUrl)).values()) total += count
  return total
}
