/** Worker-thread entry of the load generator: runs workerData's plan, posts the result. */
import { parentPort, workerData } from 'node:worker_threads'
import { type LoadPlan, runLoad } from './loadgen.ts'

const result = await runLoad(workerData as LoadPlan)
parentPort?.postMessage(result)
