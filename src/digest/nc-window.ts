/**
 * Replay and sequence detection on `nc` (the ASC_REQ_REPLAY_DETECT / SEQUENCE_DETECT analog).
 * - window: each nc accepted at most once; out-of-order arrivals accepted within `size` below the
 *   highest seen (sliding bitmap, like IPsec anti-replay). size >= 64, a multiple of 8.
 * - strict: nc must strictly increase.
 * - off: everything accepted, no state.
 * In every mode an nc outside 1 .. 2^32-1 (nc 0, non-integers) is never valid: 'too_old'.
 * A pure value type: `check` never mutates, `record` returns the new state.
 */
export type ReplayMode = 'window' | 'strict' | 'off'

export interface NcState {
  /** Highest nc recorded (0 = none yet). */
  highest: number
  /** Bit i set = nc (highest - i) seen; length = window size in bits. */
  seen: Uint8Array
}

/** fresh: accept; replay: this nc was seen; too_old: below the window, or not a valid nc. */
export type NcVerdict = 'fresh' | 'replay' | 'too_old'

export const MIN_NC_WINDOW = 64
export const MAX_NC = 0xffffffff

/** Bit i lives in byte i >> 3, under mask 1 << (i & 7). */
function bit(seen: Uint8Array, i: number): boolean {
  return (((seen[i >> 3] as number) >> (i & 7)) & 1) === 1
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < MIN_NC_WINDOW || size % 8 !== 0) {
    throw new RangeError(`nc window size must be a multiple of 8, at least ${MIN_NC_WINDOW}`)
  }
}

export function emptyNcState(size: number): NcState {
  checkSize(size)
  return { highest: 0, seen: new Uint8Array(size / 8) }
}

/**
 * A state in which every nc up to `mark` counts as used: what a restarted holder of nc state
 * assumes below a persisted reservation mark (see SecurityContext), so no replay slips through.
 */
export function usedUpTo(mark: number, size: number): NcState {
  checkSize(size)
  if (!Number.isInteger(mark) || mark < 0 || mark > MAX_NC) {
    throw new RangeError(`nc mark must be an integer in 0..${MAX_NC}`)
  }
  return { highest: mark, seen: new Uint8Array(size / 8).fill(mark === 0 ? 0 : 0xff) }
}

export function checkNc(state: NcState, nc: number, mode: ReplayMode): NcVerdict {
  if (!Number.isInteger(nc) || nc < 1 || nc > MAX_NC) return 'too_old'
  if (mode === 'off' || nc > state.highest) return 'fresh'
  if (mode === 'strict') return nc === state.highest ? 'replay' : 'too_old'
  const offset = state.highest - nc
  if (offset >= state.seen.length * 8) return 'too_old'
  return bit(state.seen, offset) ? 'replay' : 'fresh'
}

/** Record an nc that `checkNc` judged fresh; anything else returns the state unchanged. */
export function recordNc(state: NcState, nc: number, mode: ReplayMode): NcState {
  if (mode === 'off' || checkNc(state, nc, mode) !== 'fresh') return state
  if (nc <= state.highest) {
    const seen = state.seen.slice()
    const offset = state.highest - nc
    seen[offset >> 3] = (seen[offset >> 3] as number) | (1 << (offset & 7))
    return { highest: state.highest, seen }
  }
  const seen = shiftedUp(state.seen, nc - state.highest)
  seen[0] = (seen[0] as number) | 1
  return { highest: nc, seen }
}

/** A copy of the bitmap with every bit i moved to i + shift (bits past the end fall off). */
function shiftedUp(seen: Uint8Array, shift: number): Uint8Array {
  const out = new Uint8Array(seen.length)
  if (shift >= seen.length * 8) return out
  const byteShift = shift >> 3
  const bitShift = shift & 7
  for (let b = seen.length - 1; b >= byteShift; b--) {
    const from = b - byteShift
    const high = ((seen[from] as number) << bitShift) & 0xff
    const low = from > 0 && bitShift > 0 ? (seen[from - 1] as number) >> (8 - bitShift) : 0
    out[b] = high | low
  }
  return out
}

/** Compact bytes for storage: u32 highest (big-endian) + bitmap. */
export function serializeNcState(state: NcState): Uint8Array {
  const out = new Uint8Array(4 + state.seen.length)
  new DataView(out.buffer).setUint32(0, state.highest)
  out.set(state.seen, 4)
  return out
}

/**
 * Reads bytes written by `serializeNcState`. When the configured size changed since, the bitmap
 * is cut or extended; extension marks the new, unknown slots as seen (refusing a few old nc
 * beats accepting a replay). Throws RangeError on bytes too short to be a state.
 */
export function deserializeNcState(bytes: Uint8Array, size: number): NcState {
  checkSize(size)
  if (bytes.length < 4 + MIN_NC_WINDOW / 8) throw new RangeError('nc state too short')
  const highest = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0)
  const stored = bytes.subarray(4)
  const seen = new Uint8Array(size / 8)
  seen.set(stored.subarray(0, seen.length))
  if (seen.length > stored.length) seen.fill(0xff, stored.length)
  return { highest, seen }
}
