/**
 * Replay and sequence detection on `nc` (the ASC_REQ_REPLAY_DETECT / SEQUENCE_DETECT analog).
 * - window: each nc accepted at most once; out-of-order arrivals accepted within `size` below the
 *   highest seen (sliding bitmap, like IPsec anti-replay). size >= 64.
 * - strict: nc must strictly increase.
 * - off: everything accepted, no state.
 * A pure value type: `check` never mutates, `record` returns the new state.
 */
export type ReplayMode = 'window' | 'strict' | 'off'

export interface NcState {
  /** Highest nc recorded (0 = none yet). */
  highest: number
  /** Bit i set = nc (highest - i) seen; length = window size in bits. */
  seen: Uint8Array
}

export type NcVerdict = 'fresh' | 'replay' | 'too_old'

export declare function emptyNcState(size: number): NcState
export declare function checkNc(state: NcState, nc: number, mode: ReplayMode): NcVerdict
/** Record an nc that `checkNc` judged fresh. */
export declare function recordNc(state: NcState, nc: number, mode: ReplayMode): NcState
/** Compact bytes for storage: u32 highest + bitmap. */
export declare function serializeNcState(state: NcState): Uint8Array
export declare function deserializeNcState(bytes: Uint8Array, size: number): NcState
