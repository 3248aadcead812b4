/** base64url without padding (RFC 4648 §5): survives every client's quoting and splitting. */
export declare function encodeBase64Url(bytes: Uint8Array): string
/** Returns undefined on any character outside the alphabet or an impossible length. */
export declare function decodeBase64Url(text: string): Uint8Array | undefined
