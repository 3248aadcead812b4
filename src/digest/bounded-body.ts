/**
 * A request body read into memory, at most `limit` bytes: `auth-int` hashes the entity body, and
 * the authority reads its JSON requests. Reading stops as soon as the limit is passed, so an
 * oversized body costs no more than `limit` bytes of memory.
 */
export async function readBodyUpTo(
  body: ReadableStream<Uint8Array> | null,
  limit: number
): Promise<Uint8Array | undefined> {
  const chunks: Uint8Array[] = []
  let size = 0
  if (body !== null) {
    const reader = body.getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > limit) {
        await reader.cancel().catch(() => {})
        return undefined
      }
      chunks.push(value)
    }
  }
  const bytes = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    bytes.set(chunk, at)
    at += chunk.byteLength
  }
  return bytes
}
