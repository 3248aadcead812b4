/**
 * One sample of the hash micro-benchmark inside workerd, for bench/micro.ts:
 * `GET /candidates` lists what this runtime can run; `GET /sample?candidate=&kind=response|hash
 * &name=&ms=` times one candidate in this isolate and answers a Sample as JSON.
 */
import { ALGORITHMS } from '../../../src/digest/algorithms.ts'
import type { AlgorithmName, HashName } from '../../../src/digest/types.ts'
import {
  benchRequest,
  type Candidate,
  candidates,
  sampleHash,
  sampleResponse,
} from '../../lib/hash-candidates.ts'

const HASHES: readonly string[] = ['MD5', 'SHA-256', 'SHA-512-256']
let loaded: Promise<Candidate[]> | undefined
// Every sample goes on counting, so no response is computed twice.
let nextNc = 1

export default {
  async fetch(request: Request): Promise<Response> {
    loaded ??= candidates()
    const list = await loaded
    const url = new URL(request.url)
    if (url.pathname === '/candidates') return Response.json(list.map((c) => c.name))
    const candidate = list.find((c) => c.name === url.searchParams.get('candidate'))
    const ms = Number(url.searchParams.get('ms') ?? 200)
    const name = url.searchParams.get('name') ?? ''
    if (candidate === undefined || !(ms > 0)) return new Response('bad sample', { status: 400 })
    if (url.searchParams.get('kind') === 'hash') {
      if (!HASHES.includes(name)) return new Response('bad hash', { status: 400 })
      return Response.json(await sampleHash(candidate, name as HashName, ms))
    }
    if (!ALGORITHMS.includes(name as AlgorithmName)) {
      return new Response('bad algorithm', { status: 400 })
    }
    const input = benchRequest(name as AlgorithmName)
    const sample = await sampleResponse(candidate, input, ms, nextNc)
    nextNc += sample.calls
    return Response.json(sample)
  },
}
