/**
 * The host cannot obtain a key generated inside the enclave: not from ecall results or error messages,
 * not from the sealed blob, not from its own heap, and the handle reaches no enclave object.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import v8 from 'node:v8';
import { Worker, MessagePort } from 'node:worker_threads';
import {
  AttestationService,
  FileSealedStore,
  Platform,
  EnclaveCallError,
  PlatformError,
} from '../enclave-sim/index.ts';
import { bytesToHex } from '../enclave-sim/encoding.ts';
import { publicKeyOf } from '../src/crypto/secp256k1.ts';
import { EXAMPLE_ENTRY, exampleInterface, exampleOcalls, tempDir } from './fixtures/example-enclave/harness.ts';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await tempDir('isolation')));
after(() => cleanup());

/** Every Uint8Array and string reachable from `value`. */
function leaves(value: unknown, out: { bytes: Uint8Array[]; strings: string[] } = { bytes: [], strings: [] }) {
  if (value instanceof Uint8Array) out.bytes.push(value);
  else if (typeof value === 'string') out.strings.push(value);
  else if (typeof value === 'bigint' || typeof value === 'number') out.strings.push(String(value));
  else if (value instanceof Error) {
    out.strings.push(value.message);
    leaves((value as { code?: unknown }).code, out);
  } else if (value && typeof value === 'object') for (const v of Object.values(value)) leaves(v, out);
  return out;
}

function containsBytes(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(Buffer.from(needle)) >= 0;
}

test('a private key generated inside reaches no ecall result, sealed blob or host heap', async (t) => {
  const attestation = AttestationService.create();
  const platform = await Platform.open({ dir: join(dir, 'platform'), attestation });
  const storeFile = join(dir, 'wallet.sealed');
  const enclave = await platform.launch({
    entry: EXAMPLE_ENTRY,
    iface: exampleInterface,
    ocalls: exampleOcalls(),
    store: new FileSealedStore(storeFile),
    debug: true,
  });
  t.after(() => enclave.terminate());

  // Exercise every ecall, keeping every answer (results and errors).
  const answers: unknown[] = [];
  answers.push(await enclave.ecall('get_state', {}));
  answers.push(await enclave.ecall('add', { amount: 42n }));
  answers.push(await enclave.ecall('withdraw', { amount: 2n }));
  answers.push(await enclave.ecall('sign_digest', { digest: new Uint8Array(32).fill(1) }));
  answers.push(await enclave.ecall('quote', { nonce: new Uint8Array(32).fill(2) }));
  answers.push(await enclave.ecall('ping_host', { text: 'hello' }));
  for (const [name, args] of [
    ['throw_unexpected', {}],
    ['return_malformed', {}],
    ['withdraw', { amount: 10_000n }],
    ['nope', {}],
  ] as const) {
    answers.push(
      await enclave.ecallUnchecked(name, args).then(
        () => assert.fail(`${name} should fail`),
        (e: unknown) => e,
      ),
    );
  }
  const leaked = answers.find((a) => a instanceof EnclaveCallError && a.code === 'internal_error');
  assert.ok(leaked, 'throw_unexpected answers internal_error');

  // Snapshot the host heap BEFORE the test itself learns the key (reading it puts it in this heap).
  // Positive control: a hex string (as Buffer#toString makes them) held by the host IS found by this search.
  const control = Buffer.from(publicKeyOf(new Uint8Array(32).fill(9))).toString('hex');
  const snapshotFile = v8.writeHeapSnapshot(join(dir, 'host.heapsnapshot'));
  const snapshot = await readFile(snapshotFile);
  assert.ok(snapshot.includes(control), 'positive control: a string held by the host is found in the snapshot');

  // Now read the key out through the debug hook (the simulated debugger).
  const key = await platform.debugReadSecret(enclave, 'privateKey');
  const { publicKey } = await enclave.ecall('get_state', {});
  assert.deepEqual(publicKeyOf(key), publicKey, 'the debug hook returned the real key');
  const hex = bytesToHex(key);
  const forms = [hex, hex.toUpperCase(), Buffer.from(key).toString('base64')];

  const { bytes, strings } = leaves(answers);
  assert.ok(bytes.length >= 3 && strings.length > 10);
  for (const b of bytes) assert.ok(!containsBytes(b, key), 'no ecall result contains the key');
  for (const s of strings)
    for (const f of forms) assert.ok(!s.includes(f), 'no ecall result or error message contains the key');

  const blob = await readFile(storeFile);
  assert.ok(
    !containsBytes(blob, key) && !forms.some((f) => blob.includes(f)),
    'the sealed blob does not contain the key',
  );

  assert.ok(!snapshot.includes(Buffer.from(key)), 'raw key bytes are not in the host heap snapshot');
  for (const f of forms) assert.ok(!snapshot.includes(f), 'the key (hex/base64) is not in the host heap snapshot');
});

test('the handle exposes only a measurement and functions, and reaches no worker or port', async (t) => {
  const platform = await Platform.open({ dir: join(dir, 'platform2'), attestation: AttestationService.create() });
  const enclave = await platform.launch({
    entry: EXAMPLE_ENTRY,
    iface: exampleInterface,
    ocalls: exampleOcalls(),
    store: new FileSealedStore(join(dir, 'w2.sealed')),
  });
  t.after(() => enclave.terminate());
  assert.ok(Object.isFrozen(enclave));
  assert.deepEqual(Reflect.ownKeys(enclave).sort(), ['ecall', 'ecallUnchecked', 'measurement', 'postRaw', 'terminate']);
  assert.equal(Object.getPrototypeOf(enclave), Object.prototype);
  // Walk everything reachable through properties (closures are not reachable from JS).
  const seen = new Set<unknown>();
  const walk = (v: unknown): void => {
    if (v === null || (typeof v !== 'object' && typeof v !== 'function') || seen.has(v)) return;
    if (v === Object.prototype || v === Function.prototype) return;
    seen.add(v);
    assert.ok(!(v instanceof Worker) && !(v instanceof MessagePort), 'no worker or port is reachable');
    for (const k of Reflect.ownKeys(v)) {
      const d = Object.getOwnPropertyDescriptor(v, k);
      walk(d?.value);
    }
    walk(Object.getPrototypeOf(v));
  };
  walk(enclave);
  for (const k of ['ecall', 'ecallUnchecked', 'postRaw', 'terminate'] as const) {
    assert.deepEqual(Reflect.ownKeys(enclave[k]).sort(), ['length', 'name'], `${k} carries no properties`);
  }
  // A production (non-debug) enclave cannot be read even by the platform.
  await assert.rejects(
    platform.debugReadSecret(enclave, 'privateKey'),
    (e: unknown) => e instanceof PlatformError && e.code === 'not_debug',
  );
});
