/** Did a fetch fail because its AbortSignal.timeout() fired (or it was aborted)? */
export function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')
}
