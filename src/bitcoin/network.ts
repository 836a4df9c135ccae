/**
 * The Bitcoin network the project runs on: regtest, with Bitcoin Core's address encodings
 * (bech32/bech32m prefix `bcrt`, base58 P2PKH version 0x6f, P2SH version 0xc4).
 *
 * Addresses ⇄ output scripts are mapped here directly (on bitcoinjs-lib's checksummed codecs) rather
 * than through bitcoinjs-lib's payments: those need an ECC library for taproot outputs and warn on
 * future witness versions, while Core simply accepts any valid witness program.
 */
import { address as bjsAddress, networks, type Network } from 'bitcoinjs-lib';

/** bitcoinjs-lib's description of Bitcoin Core's regtest network. */
export const REGTEST: Network = networks.regtest;

const P2PKH_VERSION = REGTEST.pubKeyHash; // 0x6f
const P2SH_VERSION = REGTEST.scriptHash; // 0xc4
const HRP = REGTEST.bech32; // 'bcrt'

function witnessProgramScript(version: number, program: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + program.length);
  out[0] = version === 0 ? 0x00 : 0x50 + version;
  out[1] = program.length;
  out.set(program, 2);
  return out;
}

/** The output script an address pays to. Throws a RangeError naming the address if it is not a valid regtest address. */
export function addressToOutputScript(address: string): Uint8Array {
  const bad = (why: string) =>
    new RangeError(`address ${JSON.stringify(address)} is not a valid regtest address: ${why}`);
  if (typeof address !== 'string') throw bad('not a string');
  let base58: { version: number; hash: Uint8Array } | undefined;
  try {
    base58 = bjsAddress.fromBase58Check(address);
  } catch {
    // not base58check: try bech32 below
  }
  if (base58) {
    if (base58.hash.length !== 20) throw bad('wrong hash length');
    if (base58.version === P2PKH_VERSION) return Uint8Array.from([0x76, 0xa9, 20, ...base58.hash, 0x88, 0xac]);
    if (base58.version === P2SH_VERSION) return Uint8Array.from([0xa9, 20, ...base58.hash, 0x87]);
    throw bad(`base58 version 0x${base58.version.toString(16)} is not regtest's`);
  }
  let seg: { version: number; prefix: string; data: Uint8Array };
  try {
    seg = bjsAddress.fromBech32(address);
  } catch (err) {
    throw bad((err as Error).message);
  }
  if (seg.prefix !== HRP) throw bad(`prefix ${seg.prefix} is not ${HRP}`);
  if (seg.version > 16) throw bad('witness version above 16');
  if (seg.version === 0 && seg.data.length !== 20 && seg.data.length !== 32)
    throw bad('v0 program must be 20 or 32 bytes');
  if (seg.data.length < 2 || seg.data.length > 40) throw bad('witness program must be 2..40 bytes');
  return witnessProgramScript(seg.version, seg.data);
}

/** The regtest address of an output script, or null when the script has no address form (e.g. OP_RETURN, bare multisig). */
export function outputScriptToAddress(script: Uint8Array): string | null {
  const s = script;
  if (s.length === 25 && s[0] === 0x76 && s[1] === 0xa9 && s[2] === 20 && s[23] === 0x88 && s[24] === 0xac) {
    return bjsAddress.toBase58Check(s.subarray(3, 23), P2PKH_VERSION);
  }
  if (s.length === 23 && s[0] === 0xa9 && s[1] === 20 && s[22] === 0x87)
    return bjsAddress.toBase58Check(s.subarray(2, 22), P2SH_VERSION);
  const op = s[0] as number;
  if (s.length >= 4 && s.length <= 42 && s[1] === s.length - 2 && (op === 0 || (op >= 0x51 && op <= 0x60))) {
    const version = op === 0 ? 0 : op - 0x50;
    if (version === 0 && s.length !== 22 && s.length !== 34) return null;
    return bjsAddress.toBech32(s.subarray(2), version, HRP);
  }
  return null;
}
