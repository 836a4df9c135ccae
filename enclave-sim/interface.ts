/**
 * The "EDL" of an enclave program: the typed list of its ecalls (host → enclave) and ocalls
 * (enclave → host). Both the host and the enclave build their boundary checks from the same object.
 *
 * Enclave-safe: imported by programs that are bundled into an enclave.
 */
import type { TSchema } from '@sinclair/typebox';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from './encoding.ts';

/** The schemas of one call. */
export interface CallSpec {
  args: TSchema;
  result: TSchema;
  /**
   * Ocalls only: a notification (frames to send, an event). The enclave does not wait and the host
   * sends no answer, so it costs one crossing instead of two; `ocall` resolves with null once posted.
   * A failure in the host's handler reaches the host's `onOcallError`, never the enclave.
   */
  oneway?: boolean;
}

/** Ecalls and ocalls of one enclave program, by name. */
export interface EnclaveInterface {
  ecalls: Record<string, CallSpec>;
  ocalls: Record<string, CallSpec>;
}

/** Call names: identifiers, and never `__…` (reserved for the platform's built-in ocalls). */
const CALL_NAME = /^(?!__)[A-Za-z][A-Za-z0-9_]{0,63}$/;

/**
 * Declares an enclave interface. Returns its argument unchanged (typed precisely, so `ecall`/`ocall`
 * arguments and results are checked by the compiler).
 * @throws TypeError if a call name is not an identifier of at most 64 characters or starts with `__`.
 */
export function defineInterface<const I extends EnclaveInterface>(i: I): I {
  for (const kind of ['ecalls', 'ocalls'] as const) {
    for (const name of Object.keys(i[kind])) {
      if (!CALL_NAME.test(name)) throw new TypeError(`invalid ${kind.slice(0, -1)} name ${JSON.stringify(name)}`);
      if (kind === 'ecalls' && i.ecalls[name]!.oneway) throw new TypeError(`ecall ${name}: only ocalls can be one-way`);
    }
  }
  return i;
}

/**
 * A hex SHA-256 over a canonical JSON of the interface (sorted keys, bigints as strings, symbols dropped).
 * The enclave reports it when it starts, so a host that launched a program with a different interface
 * than the one it was built with gets `interface_mismatch` instead of confusing schema errors.
 */
export function interfaceFingerprint(iface: EnclaveInterface): string {
  return bytesToHex(sha256(utf8ToBytes(canonicalJson(iface))));
}

function canonicalJson(value: unknown): string {
  if (typeof value === 'bigint') return JSON.stringify(`${value}n`);
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  const entries = keys
    .filter((k) => typeof (value as Record<string, unknown>)[k] !== 'function')
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}
