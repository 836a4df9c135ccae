/** Hex helpers for the enclave program (Buffer-backed: the enclave runs on Node). */
export function bytesToHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Decodes lower- or upper-case hex; an odd length or a non-hex character yields an error. */
export function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Error('invalid hex');
  return new Uint8Array(Buffer.from(hex, 'hex'));
}
