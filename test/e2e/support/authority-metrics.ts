/**
 * Authority calls, counted where they land: the reference authority's GET /metrics
 * (authority_verify_total{result=…}, per isolate; `wrangler dev` runs one isolate per worker),
 * with the METRICS_TOKEN the stack wrote into the authority's secrets.
 */
import { readDotenv } from '../../../scripts/stack/secrets.ts'
import { e2e } from './context.ts'

/** Every authority_verify_total counter by result. */
export async function verifyCounters(authorityUrl: string): Promise<Map<string, number>> {
  const token = readDotenv(e2e().secrets.authority).get('METRICS_TOKEN') ?? ''
  const response = await fetch(`${authorityUrl}/metrics`, {
    headers: { Authorization: `Bearer ${token}` },
  })
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
