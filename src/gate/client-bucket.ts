/** Placeholder until the brakes rework lands: the exact address. */
export function clientBucket(address: string, _cfWorker: string | undefined): string {
  return address
}
