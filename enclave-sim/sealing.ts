/**
 * Sealed blobs: AES-256-GCM (node:crypto, i.e. OpenSSL) under a key only the same code on the same
 * platform can derive, with a cleartext header that is authenticated as associated data.
 *
 * Blob layout (all integers big-endian):
 *
 *   offset size  field
 *        0    4  magic "TCSB"
 *        4    1  format version (1)
 *        5   32  measurement of the sealing enclave
 *       37   16  platform id
 *       53   32  counter id (which monotonic counter this blob is bound to)
 *       85    8  counter value the blob was sealed at
 *       93   16  commit tag of this blob (random)
 *      109   16  commit tag of the blob it succeeds (the counter's tag when it was sealed)
 *      125   12  GCM IV (random)
 *      137    n  ciphertext
 *    137+n   16  GCM authentication tag
 *
 * The header is cleartext so a refusal can say why ('wrong_enclave' vs 'tampered') before decrypting,
 * and authenticated so none of it can be changed. Random 96-bit IVs: far below the 2^32 seals per key
 * at which GCM's random-IV bound starts to matter.
 */
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import { SealError } from './errors.ts';
import { bytesToHex, hexToBytes, utf8ToBytes } from './encoding.ts';

const MAGIC = utf8ToBytes('TCSB');
const VERSION = 1;
const HEADER_SIZE = 137;
const GCM_TAG_SIZE = 16;
const SEAL_KEY_SALT = utf8ToBytes('teechain-enclave-sim/seal/v1');

/** The authenticated cleartext header of a sealed blob. */
export interface SealedHeader {
  measurement: string;
  platformId: string;
  counterId: string;
  counter: number;
  tag: Uint8Array;
  prevTag: Uint8Array;
}

/**
 * The sealing key of one enclave code on one platform: HKDF-SHA256(ikm = platform secret,
 * salt = "teechain-enclave-sim/seal/v1", info = measurement). Computed by the Platform (the simulated
 * CPU's EGETKEY) and handed only to the enclave it launches.
 */
export function deriveSealingKey(platformSecret: Uint8Array, measurement: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', platformSecret, SEAL_KEY_SALT, hexToBytes(measurement), 32));
}

/** Seals `plaintext` under `key` with `header` authenticated alongside it. */
export function sealBlob(key: Uint8Array, header: SealedHeader, plaintext: Uint8Array, iv: Uint8Array): Uint8Array {
  const head = encodeHeader(header, iv);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(head);
  const body = cipher.update(plaintext);
  const final = cipher.final();
  const out = new Uint8Array(HEADER_SIZE + body.length + final.length + GCM_TAG_SIZE);
  out.set(head, 0);
  out.set(body, HEADER_SIZE);
  out.set(final, HEADER_SIZE + body.length);
  out.set(cipher.getAuthTag(), out.length - GCM_TAG_SIZE);
  return out;
}

/**
 * The header of a blob, without checking its authenticity (for diagnostics and for choosing the refusal
 * code). null if the blob is not a version 1 sealed blob.
 */
export function inspectSealedBlob(blob: Uint8Array): SealedHeader | null {
  if (blob.length < HEADER_SIZE + GCM_TAG_SIZE) return null;
  return parseHeader(blob);
}

/**
 * Authenticates and decrypts a blob. Checks only the cryptography; the caller compares the header with
 * its own identity and the counter first (see runtime.ts).
 * @throws SealError('tampered') if the blob is malformed or fails authentication.
 */
export function openBlob(key: Uint8Array, blob: Uint8Array): { header: SealedHeader; plaintext: Uint8Array } {
  if (blob.length < HEADER_SIZE + GCM_TAG_SIZE) throw new SealError('tampered', 'not a sealed blob');
  // One copy of the header, both parsed and authenticated: the header returned is the one GCM checked,
  // whatever happens to `blob` meanwhile. (Body and GCM tag are each read once, so need no copy.)
  const head = blob.slice(0, HEADER_SIZE);
  const header = parseHeader(head);
  if (!header) throw new SealError('tampered', 'not a sealed blob');
  const decipher = createDecipheriv('aes-256-gcm', key, head.subarray(125, HEADER_SIZE));
  decipher.setAAD(head);
  decipher.setAuthTag(blob.subarray(blob.length - GCM_TAG_SIZE));
  const body = decipher.update(blob.subarray(HEADER_SIZE, blob.length - GCM_TAG_SIZE));
  try {
    const final = decipher.final();
    const plaintext = new Uint8Array(body.length + final.length);
    plaintext.set(body, 0);
    plaintext.set(final, body.length);
    return { header, plaintext };
  } catch {
    body.fill(0);
    throw new SealError('tampered', 'sealed blob failed authentication');
  }
}

/** Parses the first HEADER_SIZE bytes of `bytes`; null unless they are a version 1 header. */
function parseHeader(bytes: Uint8Array): SealedHeader | null {
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) return null;
  if (bytes[4] !== VERSION) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  const counter = view.getBigUint64(85);
  if (counter > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return {
    measurement: bytesToHex(bytes.subarray(5, 37)),
    platformId: bytesToHex(bytes.subarray(37, 53)),
    counterId: bytesToHex(bytes.subarray(53, 85)),
    counter: Number(counter),
    tag: bytes.slice(93, 109),
    prevTag: bytes.slice(109, 125),
  };
}

function encodeHeader(h: SealedHeader, iv: Uint8Array): Uint8Array {
  if (iv.length !== 12 || h.tag.length !== 16 || h.prevTag.length !== 16) throw new TypeError('bad IV or tag size');
  const head = new Uint8Array(HEADER_SIZE);
  const view = new DataView(head.buffer);
  head.set(MAGIC, 0);
  head[4] = VERSION;
  head.set(hexToBytes(h.measurement), 5);
  head.set(hexToBytes(h.platformId), 37);
  head.set(hexToBytes(h.counterId), 53);
  view.setBigUint64(85, BigInt(h.counter));
  head.set(h.tag, 93);
  head.set(h.prevTag, 109);
  head.set(iv, 125);
  return head;
}
