/**
 * Length-prefixed frames over a byte stream: 4-byte big-endian length, then the frame.
 * The host relays frames between the TCP socket and the enclave without looking inside them.
 */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

/** Encodes frames into one buffer (so a batch goes out in one write). */
export function encodeFrames(frames: Uint8Array[]): Buffer {
  let size = 0;
  for (const f of frames) size += 4 + f.byteLength;
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (const f of frames) {
    out.writeUInt32BE(f.byteLength, off);
    out.set(f, off + 4);
    off += 4 + f.byteLength;
  }
  return out;
}

/** Accumulates stream chunks and yields whole frames. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);

  /** @throws FrameError when a frame announces more than MAX_FRAME_BYTES. */
  push(chunk: Buffer): Uint8Array[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const frames: Uint8Array[] = [];
    let off = 0;
    while (this.buf.length - off >= 4) {
      const len = this.buf.readUInt32BE(off);
      if (len > MAX_FRAME_BYTES) throw new FrameError(`frame of ${len} bytes exceeds ${MAX_FRAME_BYTES}`);
      if (this.buf.length - off - 4 < len) break;
      // Copy: the frame crosses into the enclave's isolate and must not alias the socket buffer.
      frames.push(new Uint8Array(this.buf.subarray(off + 4, off + 4 + len)));
      off += 4 + len;
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(off);
    return frames;
  }
}
