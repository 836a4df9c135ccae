/** The enclave survives host restarts: terminate or kill -9 the host, relaunch, unseal, continue. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { AttestationService, FileSealedStore, Platform } from '../enclave-sim/index.ts';
import { bytesToHex } from '../enclave-sim/encoding.ts';
import {
  EXAMPLE_DIR,
  EXAMPLE_ENTRY,
  PROJECT_ROOT,
  exampleInterface,
  exampleOcalls,
  tempDir,
} from './fixtures/example-enclave/harness.ts';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => ({ dir, cleanup } = await tempDir('restart')));
after(() => cleanup());

async function launch(platformDir: string, storeFile: string, attestation: AttestationService) {
  const platform = await Platform.open({ dir: platformDir, attestation });
  return platform.launch({
    entry: EXAMPLE_ENTRY,
    iface: exampleInterface,
    ocalls: exampleOcalls(),
    store: new FileSealedStore(storeFile),
  });
}

test('terminate, relaunch from the same platform dir and store, continue', async () => {
  const attestation = AttestationService.create();
  const platformDir = join(dir, 'a', 'platform');
  const storeFile = join(dir, 'a', 'wallet.sealed');
  const first = await launch(platformDir, storeFile, attestation);
  const { publicKey } = await first.ecall('get_state', {});
  await first.ecall('add', { amount: 5n });
  await first.ecall('add', { amount: 7n });
  const digest = new Uint8Array(32).fill(3);
  const sigBefore = (await first.ecall('sign_digest', { digest })).signature;
  await first.terminate();

  for (let round = 1; round <= 3; round++) {
    const again = await launch(platformDir, storeFile, attestation);
    try {
      const state = await again.ecall('get_state', {});
      assert.deepEqual(state.publicKey, publicKey, 'same key after restart');
      assert.equal(state.total, 12n + BigInt(round - 1));
      assert.deepEqual(
        (await again.ecall('sign_digest', { digest })).signature,
        sigBefore,
        'same key signs the same (RFC 6979)',
      );
      await again.ecall('add', { amount: 1n });
    } finally {
      await again.terminate();
    }
  }
});

test('kill -9 of the host process: every add it reported done survives', async () => {
  const platformDir = join(dir, 'b', 'platform');
  const storeFile = join(dir, 'b', 'wallet.sealed');
  const keyFile = join(dir, 'b', 'attestation.key');
  const attestation = AttestationService.create();
  await Platform.open({ dir: platformDir, attestation });
  await attestation.save(keyFile);

  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(EXAMPLE_DIR, 'host-child.ts'), platformDir, storeFile, keyFile],
    {
      cwd: PROJECT_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  let publicKey = '';
  let lastDone = 0n;
  for await (const line of createInterface({ input: child.stdout! })) {
    const msg = JSON.parse(line) as { publicKey?: string; total?: string };
    if (msg.publicKey) publicKey = msg.publicKey;
    if (msg.total) lastDone = BigInt(msg.total);
    if (lastDone >= 25n) {
      child.kill('SIGKILL'); // mid-stream: more adds are in flight
      break;
    }
  }
  assert.equal(await exited, 'SIGKILL');

  const again = await launch(platformDir, storeFile, attestation);
  try {
    const state = await again.ecall('get_state', {});
    assert.equal(bytesToHex(state.publicKey), publicKey);
    assert.ok(state.total >= lastDone, `total ${state.total} lost adds reported done (last ${lastDone})`);
    assert.ok(state.total <= lastDone + 1n, 'at most the one add in flight (sealed, not yet reported) is there too');
    assert.equal(BigInt(state.count), state.total, 'every add is counted exactly once');
    assert.equal((await again.ecall('add', { amount: 1n })).total, state.total + 1n);
  } finally {
    await again.terminate();
  }
});
