/** PLACEHOLDER until the in-memory brake store lands (h/membrakes): never merge this version. */
import type { BrakeStore } from './brake-policy.ts'

export function memoryBrakes(): BrakeStore {
  throw new Error('memoryBrakes: not yet')
}
