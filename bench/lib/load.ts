/**
 * Runs a load plan in its own thread, so that the load generator's event loop is not shared with
 * the main thread's (which reads every line the edge process logs, for the decision counts).
 */
import { Worker } from 'node:worker_threads'
import type { LoadPlan, LoadResult } from './loadgen.ts'

export function runLoadInThread(plan: LoadPlan): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./loadgen-thread.ts', import.meta.url), { workerData: plan })
    let result: LoadResult | undefined
    worker.once('message', (message: LoadResult) => {
      result = message
    })
    worker.once('error', reject)
    worker.once('exit', (code) => {
      if (result) resolve(result)
      else reject(new Error(`load generator thread exited with code ${code} and no result`))
    })
  })
}
