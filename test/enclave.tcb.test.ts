/**
 * The trusted code base is one folder, and this test enforces it. The treasury enclave bundle (exactly what
 * is measured and runs in the enclave) may contain only: this project's enclave code (src/enclave/), the pure
 * libraries it shares with the host (src/bitcoin/, src/crypto/), enclave-sim's enclave-side files, and the
 * npm packages named below; and it may import only the Node built-ins named below, each for a stated reason.
 * Anything else (src/node, src/api, src/network, src/cli, enclave-sim's platform...) fails with the file's name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleEnclave, type EnclaveBundle } from '../enclave-sim/bundle.ts';

/** The treasury enclave program's entry (what src/node launches). */
const TREASURY_PROGRAM = join(import.meta.dirname, '..', 'src', 'enclave', 'treasury', 'program.ts');

/** This project's folders whose files may run inside the enclave. */
const PROJECT_FOLDERS = ['src/enclave/', 'src/bitcoin/', 'src/crypto/'];

/** enclave-sim's files that are part of a program (the rest is the untrusted platform). */
const ENCLAVE_SIM_FILES = [
  'runtime.ts', // serves ecalls, makes ocalls, seals: the program's side of the boundary
  'interface.ts', // the typed ecall/ocall declarations both sides share
  'messages.ts', // the boundary's message shapes, checked on arrival
  'errors.ts',
  'encoding.ts',
  'sealing.ts', // sealing keys and AEAD, derived inside
  'shared-memory.ts', // the switchless call ring the runtime reads
  'quote.ts', // the quote format
  'quote-verify.ts', // verifying peers' quotes inside the enclave
].map((f) => `enclave-sim/${f}`);

/** npm packages the bundle may contain, and why. */
const PACKAGES: Record<string, string> = {
  '@noble/hashes': 'SHA-256, HMAC, HKDF for keys, ids and signatures',
  '@noble/secp256k1': 'signing settlements and messages',
  '@sinclair/typebox': 'schemas that check every ecall argument and ocall result',
  'bitcoinjs-lib': 'building and signing settlement transactions',
  'base-x': 'bitcoinjs-lib: base58 addresses',
  bech32: 'bitcoinjs-lib: segwit addresses',
  bip174: 'bitcoinjs-lib: PSBT',
  bs58: 'bitcoinjs-lib: base58 addresses',
  bs58check: 'bitcoinjs-lib: base58check addresses',
  'uint8array-tools': 'bitcoinjs-lib: byte helpers',
  valibot: 'bitcoinjs-lib: argument checks',
  'varuint-bitcoin': 'bitcoinjs-lib: transaction encoding',
  'shamir-secret-sharing': "splitting a committee's deposit keys into shares",
  'tiny-secp256k1': "libsecp256k1 (WebAssembly): fast signing of the payment path's messages",
};

/** Node built-ins the bundle may import, and why (each stands in for what an SGX enclave's SDK provides). */
const BUILTINS: Record<string, string> = {
  'node:crypto':
    "the enclave's crypto library: AES-GCM for sessions and sealing, HKDF, OpenSSL secp256k1 verification, random bytes",
  'node:worker_threads': "the isolate's only channel to the host (the simulated enclave boundary)",
  'node:util': 'types.isSharedArrayBuffer: checking the switchless call ring the host hands in',
};

function packageOf(input: string): string | undefined {
  const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  return m?.[1];
}

/** Every input or import of `bundle` that the allow-list does not name, as a line naming the file. */
function violations(bundle: EnclaveBundle): string[] {
  const out: string[] = [];
  for (const input of bundle.inputs) {
    const pkg = packageOf(input);
    if (pkg !== undefined) {
      if (!(pkg in PACKAGES)) out.push(`${input}: npm package ${pkg} is not on the enclave's allow-list`);
    } else if (!PROJECT_FOLDERS.some((f) => input.startsWith(f)) && !ENCLAVE_SIM_FILES.includes(input)) {
      out.push(`${input} is not enclave code (allowed: ${PROJECT_FOLDERS.join(', ')} and enclave-sim's program side)`);
    }
  }
  for (const { importer, path } of bundle.externals) {
    if (!(path in BUILTINS)) out.push(`${importer} imports ${path}, which is not on the enclave's allow-list`);
  }
  return out;
}

test('the treasury enclave bundle contains only the trusted code base and allow-listed packages', async () => {
  const bundle = await bundleEnclave(TREASURY_PROGRAM);
  assert.deepEqual(violations(bundle), []);
  // The allow-list is not vacuous: the program's own folder, the shared libraries and the packages are in.
  for (const prefix of [...PROJECT_FOLDERS, 'enclave-sim/runtime.ts', 'src/enclave/treasury/program.ts'])
    assert.ok(
      bundle.inputs.some((i) => i.startsWith(prefix)),
      `${prefix} is in the bundle`,
    );
  assert.ok(bundle.externals.some((e) => e.path === 'node:crypto'));
  // libsecp256k1's WebAssembly is inside the measured bundle, never read from the host's disk at start-up.
  assert.ok(bundle.inputs.includes('node_modules/tiny-secp256k1/lib/secp256k1.wasm'), bundle.inputs.join('\n'));
  assert.ok(!bundle.inputs.some((i) => i.endsWith('tiny-secp256k1/lib/wasm_path.js')));
  assert.ok(!bundle.externals.some((e) => e.path === 'fs' || e.path === 'node:fs'));
  // Nothing unused lingers on the allow-list either: every named package and built-in is really imported.
  const pkgs = new Set(bundle.inputs.map(packageOf).filter((p) => p !== undefined));
  assert.deepEqual(
    Object.keys(PACKAGES).filter((p) => !pkgs.has(p)),
    [],
    'allow-listed packages the bundle no longer uses',
  );
  const builtins = new Set(bundle.externals.map((e) => e.path));
  assert.deepEqual(
    Object.keys(BUILTINS).filter((b) => !builtins.has(b)),
    [],
    'allow-listed built-ins no longer used',
  );
});

test('a host import in enclave code fails the check, naming the file', async (t) => {
  // A probe program inside src/enclave/ that imports host code, as a careless change would.
  const probe = join(import.meta.dirname, '..', 'src', 'enclave', `tcb-probe-${process.pid}.ts`);
  writeFileSync(
    probe,
    "import { ERROR_MESSAGES } from '../node/errors.ts';\nimport { hostname } from 'node:os';\nexport const x = [ERROR_MESSAGES, hostname];\n",
  );
  t.after(() => rmSync(probe, { force: true }));
  const found = violations(await bundleEnclave(probe));
  assert.ok(
    found.some((v) => v.startsWith('src/node/errors.ts is not enclave code')),
    found.join('\n'),
  );
  assert.ok(
    found.some((v) => v.includes('imports node:os')),
    found.join('\n'),
  );
});
