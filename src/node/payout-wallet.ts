/**
 * The node's default payout address: where settlements and releases pay this node's side when the user
 * names no address. A plain P2WPKH key kept by the host in the data dir (mode 0600): after settlement
 * the money is the user's, outside any enclave, so the user's own wallet should hold it; this key is
 * that wallet for a local network. With --payout-address the user names their own address instead.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { p2wpkh } from '../bitcoin/index.ts';
import { publicKeyOf, randomPrivateKey } from '../crypto/secp256k1.ts';

export interface PayoutWallet {
  address: string;
  file: string;
}

export async function loadOrCreatePayoutWallet(datadir: string): Promise<PayoutWallet> {
  const file = join(datadir, 'payout-wallet.json');
  let priv: Uint8Array;
  try {
    const saved = JSON.parse(await readFile(file, 'utf8')) as { privateKey?: unknown };
    if (typeof saved.privateKey !== 'string' || !/^[0-9a-f]{64}$/.test(saved.privateKey))
      throw new Error(`${file} is not a payout wallet`);
    priv = new Uint8Array(Buffer.from(saved.privateKey, 'hex'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    priv = randomPrivateKey();
    const address = p2wpkh(publicKeyOf(priv)).address;
    await writeFile(file, `${JSON.stringify({ address, privateKey: Buffer.from(priv).toString('hex') }, null, 2)}\n`, {
      mode: 0o600,
    });
  }
  return { address: p2wpkh(publicKeyOf(priv)).address, file };
}
