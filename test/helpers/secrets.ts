/**
 * Every secret a test can know about a node process, for checks that none of them is ever served.
 *
 * Test-only, from outside the enclave: the platform dir of the simulated machine holds its secret, from
 * which the enclave's sealing key derives (as the simulated CPU derives it), and that key opens the sealed
 * treasury state in the data dir, which holds the enclave's private keys (identity, deposits, the keys
 * channel peers handed over). A real TEE gives no such path; the simulation's platform dir does.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { SlotFile } from '../../enclave-sim/durable-file.ts';
import { deriveSealingKey, openBlob } from '../../enclave-sim/sealing.ts';
import { decodeState } from '../../src/enclave/treasury/state.ts';

export interface Secret {
  /** What it is, for the failure message (never the secret itself). */
  what: string;
  value: string;
}

/** The secrets of a node whose data dir is `datadir`: tokens, payout key, platform secret, sealing key, every key in its sealed state. */
export async function nodeSecrets(name: string, datadir: string, measurement: string): Promise<Secret[]> {
  const out: Secret[] = [];
  const hex = (what: string, h: string) => out.push({ what: `${name} ${what}`, value: h.toLowerCase() });
  for (const f of ['admin.token', 'readonly.token']) hex(f, (await readFile(join(datadir, f), 'utf8')).trim());
  hex(
    'payout wallet key',
    (JSON.parse(await readFile(join(datadir, 'payout-wallet.json'), 'utf8')) as { privateKey: string }).privateKey,
  );
  const platformSecret = new Uint8Array(await readFile(join(datadir, 'platform', 'platform-secret')));
  hex('platform secret', Buffer.from(platformSecret).toString('hex'));
  const sealingKey = deriveSealingKey(platformSecret, measurement);
  hex('sealing key', Buffer.from(sealingKey).toString('hex'));
  const slots = await SlotFile.open(join(datadir, 'treasury.sealed'));
  let blob: Uint8Array | null;
  try {
    blob = await slots.read();
  } finally {
    await slots.close();
  }
  if (!blob) throw new Error(`${datadir} has no sealed state`);
  const state = decodeState(openBlob(sealingKey, blob).plaintext);
  hex('identity key', state.identityKey);
  for (const d of Object.values(state.deposits)) d.privkeys.forEach((k, i) => hex(`deposit ${d.id} key ${i}`, k));
  for (const ch of Object.values(state.channels))
    for (const d of ch.peerDeposits) d.privkeys.forEach((k, i) => hex(`peer deposit ${d.outpoint} key ${i}`, k));
  for (const [id, k] of Object.entries(state.committee?.memberKeys ?? {})) hex(`member key of ${id}`, k);
  return out;
}

/** The attestation service's private key (the network's root of trust), from its key file. */
export async function attestationSecret(keyFile: string): Promise<Secret> {
  return {
    what: 'attestation service key',
    value: (JSON.parse(await readFile(keyFile, 'utf8')) as { privateKey: string }).privateKey,
  };
}

/**
 * The forms a secret could take in an answer: as given; for 32-byte hex keys also upper-case hex,
 * base64, and WIF (regtest, compressed and not).
 */
export function encodings(s: Secret): Secret[] {
  const forms = [s];
  if (/^[0-9a-f]{64}$/.test(s.value)) {
    const raw = Buffer.from(s.value, 'hex');
    forms.push({ what: `${s.what} (upper-case hex)`, value: s.value.toUpperCase() });
    forms.push({ what: `${s.what} (base64)`, value: raw.toString('base64').replace(/=+$/, '') });
    forms.push({ what: `${s.what} (WIF)`, value: base58check(Buffer.concat([Buffer.of(0xef), raw, Buffer.of(0x01)])) });
    forms.push({ what: `${s.what} (WIF, uncompressed)`, value: base58check(Buffer.concat([Buffer.of(0xef), raw])) });
  }
  return forms;
}

const formsCache = new WeakMap<Secret[], Secret[]>();

/** Throws naming the first secret (in any of its forms) that `text` contains, and where. */
export function assertNoSecret(text: string, secrets: Secret[], where: string): void {
  let forms = formsCache.get(secrets);
  if (!forms) formsCache.set(secrets, (forms = secrets.flatMap(encodings)));
  for (const f of forms) {
    if (text.includes(f.value)) throw new Error(`${where} contains the ${f.what}`);
  }
}

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

function base58check(payload: Buffer): string {
  const data = Buffer.concat([payload, Buffer.from(sha256(sha256(payload))).subarray(0, 4)]);
  let n = BigInt(`0x${data.toString('hex')}`);
  let s = '';
  while (n > 0n) {
    s = ALPHABET[Number(n % 58n)]! + s;
    n /= 58n;
  }
  for (const b of data) {
    if (b !== 0) break;
    s = `1${s}`;
  }
  return s;
}
