/**
 * Output descriptors as far as the façade needs them: the BIP380 checksum, `addr(…)`/`raw(…)`
 * parsing for scantxoutset, and inferring a descriptor for a scriptPubKey (as Core shows in `desc`).
 */
import { coreAddressToScript } from './addresses.ts';
import { classifyScript } from './script-info.ts';

const INPUT_CHARSET =
  '0123456789()[],\'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#"\\ ';
const CHECKSUM_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATORS = [0xf5dee51989n, 0xa9fdca3312n, 0x1bab10e32dn, 0x3706b1677an, 0x644d626ffdn];

function polymod(c: bigint, val: number): bigint {
  const c0 = c >> 35n;
  let next = ((c & 0x7ffffffffn) << 5n) ^ BigInt(val);
  for (let i = 0; i < 5; i++) if ((c0 >> BigInt(i)) & 1n) next ^= GENERATORS[i] as bigint;
  return next;
}

/** The 8-character BIP380 checksum of a descriptor (without `#`), or null if it has characters outside the descriptor charset. */
export function descriptorChecksum(desc: string): string | null {
  let c = 1n;
  let cls = 0;
  let clsCount = 0;
  for (const ch of desc) {
    const pos = INPUT_CHARSET.indexOf(ch);
    if (pos < 0) return null;
    c = polymod(c, pos & 31);
    cls = cls * 3 + (pos >> 5);
    if (++clsCount === 3) {
      c = polymod(c, cls);
      cls = 0;
      clsCount = 0;
    }
  }
  if (clsCount > 0) c = polymod(c, cls);
  for (let i = 0; i < 8; i++) c = polymod(c, 0);
  c ^= 1n;
  let out = '';
  for (let j = 0; j < 8; j++) out += CHECKSUM_CHARSET[Number((c >> BigInt(5 * (7 - j))) & 31n)];
  return out;
}

/** `desc#checksum`. */
export function withChecksum(desc: string): string {
  return `${desc}#${descriptorChecksum(desc)}`;
}

/** A descriptor parsed for scanning: the one output script it stands for. */
export interface ScanDescriptor {
  script: Buffer;
}

/**
 * Parses `addr(ADDRESS)` or `raw(HEX)`, optionally followed by `#checksum` (which must then match).
 * Throws an Error whose message says what is wrong (the caller maps it to Core's error code).
 */
export function parseScanDescriptor(text: string): ScanDescriptor {
  const hash = text.indexOf('#');
  const body = hash >= 0 ? text.slice(0, hash) : text;
  if (hash >= 0) {
    const given = text.slice(hash + 1);
    const expected = descriptorChecksum(body);
    if (given.length !== 8) throw new Error(`Expected 8 character checksum, not ${given.length} characters`);
    if (given !== expected)
      throw new Error(`Provided checksum '${given}' does not match computed checksum '${expected}'`);
  }
  const m = /^(addr|raw)\((.*)\)$/.exec(body);
  if (!m) throw new Error(`'${body}' is not a supported descriptor (the embedded chain scans addr(…) and raw(…))`);
  if (m[1] === 'addr') {
    try {
      return { script: coreAddressToScript(m[2] as string) };
    } catch {
      throw new Error(`Address is not valid`);
    }
  }
  const hex = m[2] as string;
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(hex)) throw new Error('Raw script is not hex');
  return { script: Buffer.from(hex, 'hex') };
}

/** The descriptor Core infers for a bare scriptPubKey (no key information): addr(), pk(), multi(), rawtr() or raw(), with checksum. */
export function inferDescriptor(script: Buffer): string {
  const info = classifyScript(script);
  if (info.type === 'pubkey' && info.pubkeys) return withChecksum(`pk(${info.pubkeys[0]?.toString('hex')})`);
  if (info.type === 'multisig' && info.pubkeys && info.m !== undefined) {
    return withChecksum(`multi(${info.m},${info.pubkeys.map((k) => k.toString('hex')).join(',')})`);
  }
  if (info.type === 'witness_v1_taproot') return withChecksum(`rawtr(${script.subarray(2).toString('hex')})`);
  if (info.address) return withChecksum(`addr(${info.address})`);
  return withChecksum(`raw(${script.toString('hex')})`);
}
