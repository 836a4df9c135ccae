/**
 * Sealed state: refused when tampered with, sealed by other code / platform / instance, rolled back or
 * missing; crash-consistent; durable before an operation is reported done; serialized.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AttestationService,
  EnclaveCallError,
  FileSealedStore,
  Platform,
  inspectSealedBlob,
  type SealedStore,
} from '../enclave-sim/index.ts';
import { counterIdFor } from '../enclave-sim/counter.ts';
import { SlotFile } from '../enclave-sim/durable-file.ts';
import {
  copyExampleProject,
  EXAMPLE_ENTRY,
  exampleInterface,
  exampleOcalls,
  tempDir,
} from './fixtures/example-enclave/harness.ts';
import { waitFor } from './helpers/treasury-pair.ts';

let root: string;
let cleanup: () => Promise<void>;
const attestation = AttestationService.create();
before(async () => ({ dir: root, cleanup } = await tempDir('sealing')));
after(() => cleanup());

let caseNo = 0;
/** A fresh platform dir and store file for one scenario. */
function scenario() {
  const dir = join(root, `case-${++caseNo}`);
  return { platformDir: join(dir, 'platform'), storeFile: join(dir, 'wallet.sealed'), dir };
}

async function launch(platformDir: string, store: SealedStore, opts: { entry?: string; instance?: string } = {}) {
  const platform = await Platform.open({ dir: platformDir, attestation });
  const enclave = await platform.launch({
    entry: opts.entry ?? EXAMPLE_ENTRY,
    iface: exampleInterface,
    ocalls: exampleOcalls(),
    store,
    instance: opts.instance,
  });
  return { platform, enclave };
}

/** Launches, runs `fn`, terminates (also on failure). */
async function withEnclave<T>(
  platformDir: string,
  store: SealedStore,
  fn: (e: Awaited<ReturnType<typeof launch>>) => Promise<T>,
  opts?: { entry?: string; instance?: string },
): Promise<T> {
  const launched = await launch(platformDir, store, opts);
  try {
    return await fn(launched);
  } finally {
    await launched.enclave.terminate();
  }
}

async function refusedAtLaunch(
  platformDir: string,
  storeFile: string,
  code: string,
  opts?: { entry?: string; instance?: string },
) {
  await assert.rejects(launch(platformDir, new FileSealedStore(storeFile), opts), (e: unknown) => {
    assert.ok(e instanceof EnclaveCallError, String(e));
    assert.equal(e.code, code, e.message);
    return true;
  });
}

async function totalOf(
  platformDir: string,
  storeFile: string,
  opts?: { entry?: string; instance?: string },
): Promise<bigint> {
  return withEnclave(
    platformDir,
    new FileSealedStore(storeFile),
    async ({ enclave }) => (await enclave.ecall('get_state', {})).total,
    opts,
  );
}

test('a tampered sealed blob is refused', async () => {
  const { platformDir, storeFile } = scenario();
  await withEnclave(platformDir, new FileSealedStore(storeFile), ({ enclave }) =>
    enclave.ecall('add', { amount: 10n }),
  );
  const good = await readFile(storeFile);
  const flip = (at: number) => {
    const b = Buffer.from(good);
    b[at] = b[at]! ^ 0x01;
    return b;
  };
  const forms: [string, Uint8Array][] = [
    ['ciphertext byte', flip(good.length - 20)],
    ['GCM tag byte', flip(good.length - 1)],
    ['counter in the header', flip(92)],
    ['commit tag in the header', flip(100)],
    ['IV', flip(130)],
    ['truncated', good.subarray(0, good.length - 1)],
    ['not a blob', crypto.getRandomValues(new Uint8Array(200))],
  ];
  for (const [what, bytes] of forms) {
    await writeFile(storeFile, bytes);
    await refusedAtLaunch(platformDir, storeFile, 'tampered').catch((e) => {
      throw new Error(`${what}: ${e}`);
    });
  }
  await writeFile(storeFile, good);
  assert.equal(await totalOf(platformDir, storeFile), 10n, 'the untouched blob still unseals');
});

test('a blob sealed by other code, on another platform or by another instance is refused', async () => {
  const { platformDir, storeFile, dir } = scenario();
  await withEnclave(platformDir, new FileSealedStore(storeFile), ({ enclave }) => enclave.ecall('add', { amount: 3n }));
  const original = await readFile(storeFile);

  // Other code: the same program with one byte changed (PROGRAM_TAG v1 -> v2).
  const variantEntry = await copyExampleProject(join(dir, 'variant'));
  const src = await readFile(variantEntry, 'utf8');
  await writeFile(variantEntry, src.replace("'example-wallet/v1'", "'example-wallet/v2'"));
  await refusedAtLaunch(platformDir, storeFile, 'wrong_enclave', { entry: variantEntry });

  // The variant's own blob, relabeled with our measurement and counter id, fails authentication: the
  // sealing key depends on the measurement.
  const variantStore = join(dir, 'variant.sealed');
  const variantMeasurement = await withEnclave(
    platformDir,
    new FileSealedStore(variantStore),
    async ({ enclave }) => enclave.measurement,
    { entry: variantEntry },
  );
  const relabeled = Buffer.from(await readFile(variantStore));
  const ours = inspectSealedBlob(original)!;
  assert.notEqual(variantMeasurement, ours.measurement);
  relabeled.set(Buffer.from(ours.measurement, 'hex'), 5);
  relabeled.set(Buffer.from(ours.counterId, 'hex'), 53);
  await writeFile(storeFile, relabeled);
  await refusedAtLaunch(platformDir, storeFile, 'tampered');

  // Same code, other platform (other platform secret).
  await writeFile(storeFile, original);
  await refusedAtLaunch(join(dir, 'other-platform'), storeFile, 'wrong_enclave');
  // ... and with the platform id relabeled, authentication fails.
  const otherPlatform = await Platform.open({ dir: join(dir, 'other-platform'), attestation });
  const relabeledPlatform = Buffer.from(original);
  relabeledPlatform.set(Buffer.from(otherPlatform.id, 'hex'), 37);
  await writeFile(storeFile, relabeledPlatform);
  await refusedAtLaunch(join(dir, 'other-platform'), storeFile, 'tampered');

  // Same code and platform, another instance (another counter).
  await writeFile(storeFile, original);
  await refusedAtLaunch(platformDir, storeFile, 'wrong_enclave', { instance: 'second' });
  assert.equal(await totalOf(platformDir, storeFile), 3n);
});

test('a rolled-back (older) blob is refused, the latest one is accepted', async () => {
  const { platformDir, storeFile } = scenario();
  let older: Uint8Array = new Uint8Array();
  await withEnclave(platformDir, new FileSealedStore(storeFile), async ({ enclave }) => {
    await enclave.ecall('add', { amount: 1n });
    older = await readFile(storeFile);
    await enclave.ecall('add', { amount: 2n });
  });
  const latest = await readFile(storeFile);
  await writeFile(storeFile, older);
  await refusedAtLaunch(platformDir, storeFile, 'rollback');
  await writeFile(storeFile, latest);
  assert.equal(await totalOf(platformDir, storeFile), 3n);
});

test('a missing blob is refused once something was sealed; a fresh enclave starts empty', async () => {
  const { platformDir, storeFile } = scenario();
  const platform = await Platform.open({ dir: platformDir, attestation });
  let measurement = '';
  await withEnclave(platformDir, new FileSealedStore(storeFile), async ({ enclave }) => {
    measurement = enclave.measurement;
    assert.equal(await platform.readCounter(measurement), 1, 'init sealed the new wallet');
    assert.equal((await enclave.ecall('get_state', {})).total, 0n);
  });
  await rm(storeFile);
  await refusedAtLaunch(platformDir, storeFile, 'missing');
  // The counter lives in the platform dir, in the documented format.
  const counterSlots = await SlotFile.open(join(platformDir, 'counters', counterIdFor(measurement, 'default')));
  const record = JSON.parse(new TextDecoder().decode((await counterSlots.read())!));
  await counterSlots.close();
  assert.deepEqual(Object.keys(record).sort(), ['counterId', 'format', 'instance', 'measurement', 'tag', 'value']);
  assert.equal(record.value, 1);
  assert.equal(record.format, 'teechain-enclave-sim/counter/v1');
});

/** A store that, once armed, writes the blob and then never answers (the host dies before the counter moves). */
class CrashAfterStore implements SealedStore {
  readonly inner: FileSealedStore;
  armed = false;
  stored: Promise<void>;
  #signal!: () => void;
  constructor(file: string) {
    this.inner = new FileSealedStore(file);
    this.stored = new Promise((r) => {
      this.#signal = r;
    });
  }
  async store(blob: Uint8Array): Promise<void> {
    await this.inner.store(blob);
    if (this.armed) {
      this.#signal();
      await new Promise(() => {}); // never resolves: the enclave is killed while waiting
    }
  }
  load() {
    return this.inner.load();
  }
}

test('a crash between storing a blob and advancing the counter is recovered, and cannot be used to fork', async () => {
  const { platformDir, storeFile, dir } = scenario();
  const store = new CrashAfterStore(storeFile);
  const { platform, enclave } = await launch(platformDir, store);
  await enclave.ecall('add', { amount: 1n }); // committed: counter 2
  const committed = await readFile(storeFile);
  store.armed = true;
  const pending = enclave.ecall('add', { amount: 5n }).then(
    () => null,
    (e: unknown) => e,
  );
  await store.stored;
  await enclave.terminate();
  const outcome = await pending;
  assert.ok(
    outcome instanceof EnclaveCallError && outcome.code === 'enclave_terminated',
    'the +5 was never reported done',
  );
  const orphan = await readFile(storeFile);
  assert.equal(await platform.readCounter(enclave.measurement), 2, 'the counter did not move');
  assert.equal(inspectSealedBlob(orphan)!.counter, 3, 'the blob is one ahead');

  // Keep a copy of the crash state (platform dir and store) to replay the other branch.
  const forkDir = join(dir, 'fork');
  await cp(platformDir, join(forkDir, 'platform'), { recursive: true });

  // Branch 1: the host restarts from the blob it has (one ahead): accepted, and the counter catches up.
  assert.equal(await totalOf(platformDir, storeFile), 6n);
  assert.equal(await platform.readCounter(enclave.measurement), 3);
  await writeFile(storeFile, committed);
  await refusedAtLaunch(platformDir, storeFile, 'rollback');

  // Branch 2: a host that kept the older blob restarts from it (accepted: the +5 was never reported done),
  // lets the enclave seal a different successor, then tries to swap the first successor back in.
  const forkPlatform = join(forkDir, 'platform');
  const forkStore = join(forkDir, 'wallet.sealed');
  await writeFile(forkStore, committed);
  await withEnclave(forkPlatform, new FileSealedStore(forkStore), async ({ enclave: e }) => {
    assert.equal((await e.ecall('get_state', {})).total, 1n);
    await e.ecall('add', { amount: 7n });
  });
  const successor = await readFile(forkStore);
  assert.equal(inspectSealedBlob(successor)!.counter, 3, 'both successors carry counter 3');
  await writeFile(forkStore, orphan);
  await refusedAtLaunch(forkPlatform, forkStore, 'rollback');
  await writeFile(forkStore, successor);
  assert.equal(await totalOf(forkPlatform, forkStore), 8n);
});

/** Records store events and delays each store (by the next of `delays` ms, or until the next of `holds` settles). */
class SlowStore implements SealedStore {
  readonly inner: FileSealedStore;
  readonly events: string[] = [];
  readonly delays: number[];
  readonly holds: Promise<void>[] = [];
  active = 0;
  maxActive = 0;
  constructor(file: string, delays: number[]) {
    this.inner = new FileSealedStore(file);
    this.delays = delays;
  }
  async store(blob: Uint8Array): Promise<void> {
    const n = inspectSealedBlob(blob)!.counter;
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    this.events.push(`store:begin:${n}`);
    const hold = this.holds.shift();
    if (hold) await hold;
    else await new Promise((r) => setTimeout(r, this.delays.shift() ?? 0));
    await this.inner.store(blob);
    this.events.push(`store:end:${n}`);
    this.active--;
  }
  load() {
    return this.inner.load();
  }
}

test('sealState resolves only after the blob is stored and the counter advanced', async () => {
  const { platformDir, storeFile } = scenario();
  const store = new SlowStore(storeFile, []);
  const { platform, enclave } = await launch(platformDir, store);
  try {
    // The store is held open until the checks below have run.
    let release!: () => void;
    store.holds.push(
      new Promise<void>((r) => {
        release = r;
      }),
    );
    const before = await platform.readCounter(enclave.measurement);
    let resolved = false;
    const call = enclave.ecall('add', { amount: 4n }).then((r) => {
      resolved = true;
      store.events.push('ecall:resolved');
      return r;
    });
    await waitFor(() => store.events.includes(`store:begin:${before + 1}`), 15_000);
    // A later ecall's answer: had the enclave answered the add before its store completed, that answer
    // would have come first.
    await enclave.ecall('get_state', {});
    assert.equal(resolved, false, 'not done while the store is still writing');
    assert.equal(await platform.readCounter(enclave.measurement), before, 'the counter waits for the store');
    release();
    await call;
    assert.equal(
      await platform.readCounter(enclave.measurement),
      before + 1,
      'the counter was advanced when the ecall resolved',
    );
    assert.equal(
      inspectSealedBlob(await readFile(storeFile))!.counter,
      before + 1,
      'the new blob was on disk when the ecall resolved',
    );
    assert.deepEqual(store.events.slice(-3), [
      `store:begin:${before + 1}`,
      `store:end:${before + 1}`,
      'ecall:resolved',
    ]);
  } finally {
    await enclave.terminate();
  }
});

test('concurrent sealState calls are serialized in call order', async () => {
  const { platformDir, storeFile } = scenario();
  const store = new SlowStore(storeFile, []);
  const { platform, enclave } = await launch(platformDir, store);
  try {
    const start = await platform.readCounter(enclave.measurement);
    store.events.length = 0;
    store.delays.push(120, 10, 60, 0, 30); // uneven: a parallel implementation would reorder or overlap
    const results = await Promise.all([1n, 2n, 3n, 4n, 5n].map((amount) => enclave.ecall('add', { amount })));
    assert.deepEqual(
      results.map((r) => r.total),
      [1n, 3n, 6n, 10n, 15n],
    );
    assert.equal(store.maxActive, 1, 'never two stores at once');
    const expected = [1, 2, 3, 4, 5].flatMap((i) => [`store:begin:${start + i}`, `store:end:${start + i}`]);
    assert.deepEqual(store.events, expected);
    assert.equal(await platform.readCounter(enclave.measurement), start + 5);
  } finally {
    await enclave.terminate();
  }
  assert.equal(await totalOf(platformDir, storeFile), 15n);
});

test('unprotected seals: one store, no counter advance; the host may go back among them, never behind a protected seal', async () => {
  const { platformDir, storeFile } = scenario();
  const store = new SlowStore(storeFile, []);
  const { platform, enclave } = await launch(platformDir, store);
  const blobs: Record<string, Uint8Array> = {};
  let base = 0;
  try {
    await enclave.ecall('add', { amount: 1n }); // protected
    base = await platform.readCounter(enclave.measurement);
    blobs.protected = await readFile(storeFile);
    await enclave.ecall('add', { amount: 10n, protect: false });
    blobs.credit1 = await readFile(storeFile);
    await enclave.ecall('add', { amount: 100n, protect: false });
    blobs.credit2 = await readFile(storeFile);
    assert.equal(await platform.readCounter(enclave.measurement), base, 'unprotected seals leave the counter alone');
    for (const b of [blobs.credit1, blobs.credit2]) {
      const h = inspectSealedBlob(b)!;
      assert.equal(h.counter, base, 'an unprotected blob carries the counter value it builds on');
      assert.deepEqual(
        h.prevTag,
        inspectSealedBlob(blobs.protected)!.tag,
        'and names the protected blob as its predecessor',
      );
    }
    assert.deepEqual(store.events.slice(-2), [`store:begin:${base}`, `store:end:${base}`]);
  } finally {
    await enclave.terminate();
  }
  // Each of the three is accepted while the counter is at `base`...
  await writeFile(storeFile, blobs.credit1!);
  assert.equal(await totalOf(platformDir, storeFile), 11n);
  await writeFile(storeFile, blobs.protected!);
  assert.equal(await totalOf(platformDir, storeFile), 1n);
  await writeFile(storeFile, blobs.credit2!);
  // ...and the next protected seal, built on credit2, shuts all of them out.
  await withEnclave(platformDir, new FileSealedStore(storeFile), async ({ enclave: e }) => {
    assert.equal((await e.ecall('withdraw', { amount: 5n })).total, 106n);
  });
  assert.equal(await platform.readCounter(inspectSealedBlob(blobs.protected!)!.measurement), base + 1);
  for (const [name, b] of Object.entries(blobs)) {
    await writeFile(storeFile, b);
    await refusedAtLaunch(platformDir, storeFile, 'rollback').catch((e) => {
      throw new Error(`${name}: ${e}`);
    });
  }
});

test("an unprotected blob that does not build on the counter's blob is refused", async () => {
  const { platformDir, storeFile } = scenario();
  let stale: Uint8Array = new Uint8Array();
  await withEnclave(platformDir, new FileSealedStore(storeFile), async ({ enclave }) => {
    await enclave.ecall('add', { amount: 1n });
    await enclave.ecall('add', { amount: 2n, protect: false }); // builds on counter value c
    stale = await readFile(storeFile);
    await enclave.ecall('add', { amount: 3n }); // protected: c + 1
    await enclave.ecall('add', { amount: 4n, protect: false }); // builds on c + 1
  });
  const latest = await readFile(storeFile);
  await writeFile(storeFile, stale);
  await refusedAtLaunch(platformDir, storeFile, 'rollback');
  // The same unprotected blob relabelled to claim the current counter value fails authentication.
  const relabeled = Buffer.from(stale);
  relabeled.writeBigUInt64BE(BigInt(inspectSealedBlob(latest)!.counter), 85);
  await writeFile(storeFile, relabeled);
  await refusedAtLaunch(platformDir, storeFile, 'tampered');
  await writeFile(storeFile, latest);
  assert.equal(await totalOf(platformDir, storeFile), 10n);
});
