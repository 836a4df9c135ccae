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

export interface FrameDecoderOptions {
  /** Largest frame accepted (default MAX_FRAME_BYTES); may be changed later through `maxFrameBytes`. */
  maxFrameBytes?: number;
  /** Told of every copy of received bytes the decoder makes (so tests can check it copies each byte once). */
  onCopy?: (bytes: number) => void;
}

/**
 * Accumulates stream chunks and yields whole frames. The chunks are kept as a list, not joined, and a
 * frame is copied out once all of its bytes are there: each received byte is copied once, however the
 * stream is cut (joining the buffer on every chunk made a large frame cost quadratic time).
 */
export class FrameDecoder {
  maxFrameBytes: number;
  private readonly onCopy?: (bytes: number) => void;
  private chunks: Buffer[] = [];
  /** Index of the first chunk still holding unread bytes, and the offset of its first unread byte. */
  private first = 0;
  private offset = 0;
  private unread = 0;

  constructor(opts: FrameDecoderOptions = {}) {
    this.maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.onCopy = opts.onCopy;
  }

  /** Bytes received and not yet handed on as frames. */
  get buffered(): number {
    return this.unread;
  }

  /** Chunks held (an upper bound on the decoder's memory, with `buffered`). */
  get chunkCount(): number {
    return this.chunks.length - this.first;
  }

  /** The length the next frame announces, once its prefix is in; null before. */
  nextLength(): number | null {
    return this.unread < 4 ? null : this.peekLength();
  }

  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.unread += chunk.length;
  }

  /**
   * The next whole frame (a fresh copy: it crosses into the enclave's isolate and must not alias the
   * socket's buffers), or null until more bytes arrive.
   * @throws FrameError as soon as a length prefix exceeds maxFrameBytes, before the frame's bytes
   *   arrive; the prefix stays unread, so raising the limit lets decoding go on.
   */
  next(): Uint8Array | null {
    if (this.unread < 4) return null;
    const len = this.peekLength();
    if (len > this.maxFrameBytes) throw new FrameError(`frame of ${len} bytes exceeds ${this.maxFrameBytes}`);
    if (this.unread - 4 < len) return null;
    this.skip(4);
    const frame = new Uint8Array(len);
    let filled = 0;
    while (filled < len) {
      const c = this.chunks[this.first]!;
      const n = Math.min(len - filled, c.length - this.offset);
      frame.set(c.subarray(this.offset, this.offset + n), filled);
      filled += n;
      this.skip(n);
    }
    this.onCopy?.(len);
    return frame;
  }

  /** append + every whole frame. @throws FrameError like next(), when no frame came before the refused prefix. */
  push(chunk: Buffer): Uint8Array[] {
    this.append(chunk);
    const frames: Uint8Array[] = [];
    try {
      for (let f = this.next(); f !== null; f = this.next()) frames.push(f);
    } catch (err) {
      // The refused prefix stays unread: the next call throws again; these frames are not lost.
      if (frames.length === 0) throw err;
    }
    return frames;
  }

  private peekLength(): number {
    let len = 0;
    let i = this.first;
    let off = this.offset;
    for (let k = 0; k < 4; k++) {
      while (off >= this.chunks[i]!.length) {
        i++;
        off = 0;
      }
      len = len * 256 + this.chunks[i]![off++]!;
    }
    return len;
  }

  private skip(n: number): void {
    this.unread -= n;
    this.offset += n;
    while (this.first < this.chunks.length && this.offset >= this.chunks[this.first]!.length) {
      this.offset -= this.chunks[this.first]!.length;
      this.first++;
    }
    // Drop consumed chunks now and then, not on every frame, so a stream of tiny chunks stays linear.
    if (this.first === this.chunks.length) {
      this.chunks = [];
      this.first = 0;
    } else if (this.first >= 1024 && this.first * 2 >= this.chunks.length) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
  }
}
