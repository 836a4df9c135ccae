/**
 * Core ⇄ bcoin address translation. At the façade's interface addresses are Bitcoin Core regtest
 * addresses (`bcrt1…`, base58 `m…`/`n…` P2PKH 0x6f, `2…` P2SH 0xc4); bcoin's regtest uses `rb1…`, 0x3c
 * and 0x26. Rather than re-prefixing strings, both directions go through the output script, which is
 * the same on both sides.
 */
import { addressToOutputScript, outputScriptToAddress } from '../../bitcoin/network.ts';

/** The output script of a Core regtest address. Throws a RangeError naming the address if invalid. */
export function coreAddressToScript(address: string): Buffer {
  return Buffer.from(addressToOutputScript(address));
}

/** The Core regtest address of an output script, or null if it has none. */
export function scriptToCoreAddress(script: Uint8Array): string | null {
  return outputScriptToAddress(script);
}
