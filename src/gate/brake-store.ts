/** The brakes backed by the Brake Durable Object, one object per client address. */
import type { Brake } from './brake.ts'
import type { BrakeStore } from './options.ts'

export function durableObjectBrakes(ns: DurableObjectNamespace<Brake>): BrakeStore {
  return {
    admit: (ip, user, now, policy) => ns.getByName(ip).admit(user, now, policy),
    recordFailure: (ip, user, now, policy) => ns.getByName(ip).recordFailure(user, now, policy),
  }
}
