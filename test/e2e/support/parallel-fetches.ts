/**
 * The check both browsers share: a page of /private/app/ is loaded (one 401 for the app's
 * directory; the browser's /favicon.ico lies outside that protection space and gets its own),
 * then the page makes 8 parallel same-origin fetches, which must all be 200 as alice, answered
 * preemptively: no second challenge. The nc values are recorded for the interop document.
 */
import { expect } from 'vitest'
import { expectForwardedAs, parseEcho } from './echo.ts'
import type { ClientId } from './interop.ts'
import { record } from './record.ts'
import type { Exchange, Recorder } from './recorder.ts'
import { ALICE } from './users.ts'

export interface PageFetch {
  status: number
  body: string
}

/** Runs in the page (serialised by the browser driver): self-contained. */
async function eightParallelFetches(): Promise<PageFetch[]> {
  const paths = Array.from({ length: 8 }, (_, i) => `/private/app/item-${i}`)
  return Promise.all(
    paths.map(async (path) => {
      const response = await fetch(path, { cache: 'no-store' })
      return { status: response.status, body: await response.text() }
    })
  )
}

/**
 * After the page loaded: the fetches through `evaluate` (the driver's `page.evaluate`), the
 * checks above, then `expectDigests` on what the gate received, then the record.
 */
export async function expectParallelFetchesPreemptive(
  client: ClientId,
  recorder: Recorder,
  evaluate: (fn: () => Promise<PageFetch[]>) => Promise<PageFetch[]>,
  expectDigests: (fetched: Exchange[]) => void
): Promise<void> {
  const appChallenges = () =>
    recorder.exchanges.filter((e) => e.path.startsWith('/private/app/') && e.status === 401)
  expect(appChallenges()).toHaveLength(1)

  const results = await evaluate(eightParallelFetches)
  expect(results.map((r) => r.status)).toEqual(Array(8).fill(200))
  for (const result of results) expectForwardedAs(parseEcho(result.body), ALICE.name)
  expect(appChallenges()).toHaveLength(1)
  const fetched = recorder.exchanges.filter((e) => e.path.startsWith('/private/app/item-'))
  expect(fetched).toHaveLength(8)
  expectDigests(fetched)
  const ncs = fetched.map((e) => Number.parseInt(e.digest?.nc ?? '', 16))
  record({
    kind: 'check',
    client,
    check: 'page load, then 8 parallel fetches: all 200, no second 401',
    ok: true,
    detail: `nc in arrival order: ${ncs.join(' ')}`,
  })
}
