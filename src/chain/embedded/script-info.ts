/**
 * What Core shows about a script: its type name, address, and `asm` text (Core's ScriptToAsmStr:
 * small pushes as numbers, OP_0..OP_16 as digits, signatures in scriptSigs with their sighash type).
 */
import { script as bjsScript } from 'bitcoinjs-lib';
import { scriptToCoreAddress } from './addresses.ts';

/** Core's script type names (`scriptPubKey.type`). */
export type CoreScriptType =
  | 'nonstandard'
  | 'anchor'
  | 'pubkey'
  | 'pubkeyhash'
  | 'scripthash'
  | 'multisig'
  | 'nulldata'
  | 'witness_v0_keyhash'
  | 'witness_v0_scripthash'
  | 'witness_v1_taproot'
  | 'witness_unknown';

/** A classified output script. */
export interface ScriptInfo {
  type: CoreScriptType;
  /** Core regtest address, for address types. */
  address?: string;
  /** Public keys of pubkey/multisig scripts. */
  pubkeys?: Buffer[];
  /** Required signatures of multisig scripts. */
  m?: number;
}

interface Op {
  code: number;
  data?: Buffer;
}

/** Splits a script into opcodes; `ok` is false when a push runs past the end. */
function parseOps(script: Buffer): { ops: Op[]; ok: boolean } {
  const ops: Op[] = [];
  let i = 0;
  while (i < script.length) {
    const code = script[i++] as number;
    if (code > 0x4e) {
      ops.push({ code });
      continue;
    }
    let len = code;
    if (code === 0x4c) {
      if (i + 1 > script.length) return { ops, ok: false };
      len = script.readUInt8(i);
      i += 1;
    } else if (code === 0x4d) {
      if (i + 2 > script.length) return { ops, ok: false };
      len = script.readUInt16LE(i);
      i += 2;
    } else if (code === 0x4e) {
      if (i + 4 > script.length) return { ops, ok: false };
      len = script.readUInt32LE(i);
      i += 4;
    }
    if (i + len > script.length) return { ops, ok: false };
    ops.push({ code, data: script.subarray(i, i + len) });
    i += len;
  }
  return { ops, ok: true };
}

/** The data pushes of a push-only script (OP_0..OP_16 count as pushes), or null if it is not push-only or malformed. */
export function pushedItems(script: Buffer): Buffer[] | null {
  const { ops, ok } = parseOps(script);
  if (!ok) return null;
  const items: Buffer[] = [];
  for (const op of ops) {
    if (op.data) items.push(op.data);
    else if (op.code === 0x4f) items.push(Buffer.from([0x81]));
    else if (op.code >= 0x51 && op.code <= 0x60) items.push(Buffer.from([op.code - 0x50]));
    else return null;
  }
  return items;
}

function smallInt(code: number): number | null {
  if (code === 0) return 0;
  if (code >= 0x51 && code <= 0x60) return code - 0x50;
  return null;
}

function isPubkeyBytes(b: Buffer | undefined): b is Buffer {
  if (!b) return false;
  if (b.length === 33) return b[0] === 2 || b[0] === 3;
  if (b.length === 65) return b[0] === 4;
  return false;
}

/** Classifies an output script the way Core's Solver does (the subset of types Core names). */
export function classifyScript(script: Buffer): ScriptInfo {
  const withAddress = (type: CoreScriptType): ScriptInfo => {
    const address = scriptToCoreAddress(script);
    return address ? { type, address } : { type };
  };
  const len = script.length;
  // Witness program: a version opcode followed by one 2..40-byte push.
  if (
    len >= 4 &&
    len <= 42 &&
    (script[0] === 0 || ((script[0] as number) >= 0x51 && (script[0] as number) <= 0x60)) &&
    script[1] === len - 2
  ) {
    const version = smallInt(script[0] as number) as number;
    const program = script.subarray(2);
    if (version === 0 && program.length === 20) return withAddress('witness_v0_keyhash');
    if (version === 0 && program.length === 32) return withAddress('witness_v0_scripthash');
    if (version === 1 && program.length === 32) return withAddress('witness_v1_taproot');
    if (version === 1 && program.equals(Buffer.from([0x4e, 0x73]))) return withAddress('anchor');
    if (version !== 0) return withAddress('witness_unknown');
    return { type: 'nonstandard' };
  }
  if (
    len === 25 &&
    script[0] === 0x76 &&
    script[1] === 0xa9 &&
    script[2] === 20 &&
    script[23] === 0x88 &&
    script[24] === 0xac
  ) {
    return withAddress('pubkeyhash');
  }
  if (len === 23 && script[0] === 0xa9 && script[1] === 20 && script[22] === 0x87) return withAddress('scripthash');
  const { ops, ok } = parseOps(script);
  if (!ok) return { type: 'nonstandard' };
  if (len >= 1 && script[0] === 0x6a && ops.slice(1).every((op) => op.code <= 0x60)) return { type: 'nulldata' };
  if (ops.length === 2 && ops[1]?.code === 0xac && isPubkeyBytes(ops[0]?.data)) {
    return { type: 'pubkey', pubkeys: [ops[0]?.data as Buffer] };
  }
  if (ops.length >= 4 && ops[ops.length - 1]?.code === 0xae) {
    const m = smallInt(ops[0]?.code ?? -1);
    const n = smallInt(ops[ops.length - 2]?.code ?? -1);
    const keys = ops.slice(1, -2).map((op) => op.data);
    if (m && n && m <= n && keys.length === n && keys.every(isPubkeyBytes)) {
      return { type: 'multisig', m, pubkeys: keys as Buffer[] };
    }
  }
  return { type: 'nonstandard' };
}

const OP_NAMES: Record<number, string> = {
  0x4f: '-1',
  0x50: 'OP_RESERVED',
  0x61: 'OP_NOP',
  0x62: 'OP_VER',
  0x63: 'OP_IF',
  0x64: 'OP_NOTIF',
  0x65: 'OP_VERIF',
  0x66: 'OP_VERNOTIF',
  0x67: 'OP_ELSE',
  0x68: 'OP_ENDIF',
  0x69: 'OP_VERIFY',
  0x6a: 'OP_RETURN',
  0x6b: 'OP_TOALTSTACK',
  0x6c: 'OP_FROMALTSTACK',
  0x6d: 'OP_2DROP',
  0x6e: 'OP_2DUP',
  0x6f: 'OP_3DUP',
  0x70: 'OP_2OVER',
  0x71: 'OP_2ROT',
  0x72: 'OP_2SWAP',
  0x73: 'OP_IFDUP',
  0x74: 'OP_DEPTH',
  0x75: 'OP_DROP',
  0x76: 'OP_DUP',
  0x77: 'OP_NIP',
  0x78: 'OP_OVER',
  0x79: 'OP_PICK',
  0x7a: 'OP_ROLL',
  0x7b: 'OP_ROT',
  0x7c: 'OP_SWAP',
  0x7d: 'OP_TUCK',
  0x7e: 'OP_CAT',
  0x7f: 'OP_SUBSTR',
  0x80: 'OP_LEFT',
  0x81: 'OP_RIGHT',
  0x82: 'OP_SIZE',
  0x83: 'OP_INVERT',
  0x84: 'OP_AND',
  0x85: 'OP_OR',
  0x86: 'OP_XOR',
  0x87: 'OP_EQUAL',
  0x88: 'OP_EQUALVERIFY',
  0x89: 'OP_RESERVED1',
  0x8a: 'OP_RESERVED2',
  0x8b: 'OP_1ADD',
  0x8c: 'OP_1SUB',
  0x8d: 'OP_2MUL',
  0x8e: 'OP_2DIV',
  0x8f: 'OP_NEGATE',
  0x90: 'OP_ABS',
  0x91: 'OP_NOT',
  0x92: 'OP_0NOTEQUAL',
  0x93: 'OP_ADD',
  0x94: 'OP_SUB',
  0x95: 'OP_MUL',
  0x96: 'OP_DIV',
  0x97: 'OP_MOD',
  0x98: 'OP_LSHIFT',
  0x99: 'OP_RSHIFT',
  0x9a: 'OP_BOOLAND',
  0x9b: 'OP_BOOLOR',
  0x9c: 'OP_NUMEQUAL',
  0x9d: 'OP_NUMEQUALVERIFY',
  0x9e: 'OP_NUMNOTEQUAL',
  0x9f: 'OP_LESSTHAN',
  0xa0: 'OP_GREATERTHAN',
  0xa1: 'OP_LESSTHANOREQUAL',
  0xa2: 'OP_GREATERTHANOREQUAL',
  0xa3: 'OP_MIN',
  0xa4: 'OP_MAX',
  0xa5: 'OP_WITHIN',
  0xa6: 'OP_RIPEMD160',
  0xa7: 'OP_SHA1',
  0xa8: 'OP_SHA256',
  0xa9: 'OP_HASH160',
  0xaa: 'OP_HASH256',
  0xab: 'OP_CODESEPARATOR',
  0xac: 'OP_CHECKSIG',
  0xad: 'OP_CHECKSIGVERIFY',
  0xae: 'OP_CHECKMULTISIG',
  0xaf: 'OP_CHECKMULTISIGVERIFY',
  0xb0: 'OP_NOP1',
  0xb1: 'OP_CHECKLOCKTIMEVERIFY',
  0xb2: 'OP_CHECKSEQUENCEVERIFY',
  0xb3: 'OP_NOP4',
  0xb4: 'OP_NOP5',
  0xb5: 'OP_NOP6',
  0xb6: 'OP_NOP7',
  0xb7: 'OP_NOP8',
  0xb8: 'OP_NOP9',
  0xb9: 'OP_NOP10',
  0xba: 'OP_CHECKSIGADD',
  0xff: 'OP_INVALIDOPCODE',
};

const SIGHASH_NAMES: Record<number, string> = {
  0x01: 'ALL',
  0x81: 'ALL|ANYONECANPAY',
  0x02: 'NONE',
  0x82: 'NONE|ANYONECANPAY',
  0x03: 'SINGLE',
  0x83: 'SINGLE|ANYONECANPAY',
};

function scriptNumText(data: Buffer): string {
  if (data.length === 0) return '0';
  let v = 0n;
  for (let i = data.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[i] as number);
  const signBit = 0x80n << BigInt(8 * (data.length - 1));
  return (v & signBit ? -(v & ~signBit) : v).toString();
}

/** Core's asm text of a script; `sighashDecode` is set for scriptSigs (signatures shown as `<hex>[ALL]`). */
export function scriptAsm(script: Buffer, sighashDecode = false): string {
  const { ops, ok } = parseOps(script);
  const unspendable = script.length > 0 && script[0] === 0x6a;
  const parts = ops.map((op) => {
    if (op.data) {
      if (op.data.length <= 4) return scriptNumText(op.data);
      if (sighashDecode && !unspendable && bjsScript.isCanonicalScriptSignature(op.data)) {
        const name = SIGHASH_NAMES[op.data[op.data.length - 1] as number];
        if (name) return `${op.data.subarray(0, -1).toString('hex')}[${name}]`;
      }
      return op.data.toString('hex');
    }
    const n = smallInt(op.code);
    if (n !== null) return String(n);
    return OP_NAMES[op.code] ?? 'OP_UNKNOWN';
  });
  if (!ok) parts.push('[error]');
  return parts.join(' ');
}
