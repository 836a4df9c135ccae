/**
 * One enclave instance at a time per counter, across processes: a second launch of the same code and
 * instance on the same platform dir is refused while the first lives, even from another process, and a
 * handle that does not hold the counter's lock cannot move the counter.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { copyFile, mkdir } from 'node:fs/promises';
import { closeSync, openSync, read, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import {
  AttestationService,
  EnclaveCallError,
  FileSealedStore,
  Platform,
  PlatformError,
} from '../enclave-sim/index.ts';
import { CounterStore, counterIdFor } from '../enclave-sim/counter.ts';
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
before(async () => ({ dir, cleanup } = await tempDir('counter-lock')));
after(() => cleanup());

type Reply = { launched?: true; launchError?: string; message?: string; ok?: true; total?: string; error?: string };

/** A host process (lock-child.ts) on `platformDir` with its own store; answers one JSON line per request. */
function spawnHost(platformDir: string, storeFile: string, keyFile: string) {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', join(EXAMPLE_DIR, 'lock-child.ts'), platformDir, storeFile, keyFile],
    {
      cwd: PROJECT_ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<Reply> => {
    const { value, done } = await lines.next();
    if (done) throw new Error('host process closed its output');
    return JSON.parse(value as string) as Reply;
  };
  return {
    child,
    exited,
    /** The launch outcome (the first line). */
    launched: next(),
    async call(op: 'add' | 'withdraw', amount: bigint): Promise<Reply> {
      child.stdin!.write(`${JSON.stringify({ op, amount: amount.toString() })}\n`);
      return next();
    },
    async close() {
      child.stdin!.end();
      return exited;
    },
  };
}

/**
 * Holds every thread of libuv's pool in a blocking read of a FIFO (opened read-write, so it never sees
 * end-of-file); pool work queued meanwhile (every file write) waits behind those reads, synchronous reads
 * do not. The returned function writes a byte to each FIFO and waits until the threads are free again.
 */
async function holdThreadPool(under: string): Promise<() => Promise<void>> {
  const size = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  await mkdir(under, { recursive: true });
  const fds = Array.from({ length: size }, (_, i) => {
    const f = join(under, `pool-${i}.fifo`);
    execFileSync('mkfifo', [f]);
    return openSync(f, 'r+');
  });
  const reads = fds.map((fd) => new Promise<void>((resolve) => read(fd, Buffer.alloc(1), 0, 1, null, () => resolve())));
  return async () => {
    for (const fd of fds) writeSync(fd, Buffer.from('x'));
    await Promise.all(reads);
    for (const fd of fds) closeSync(fd);
  };
}

/** A platform dir whose example wallet holds `total`, sealed in `storeFile`, and the attestation key file. */
async function walletWith(name: string, total: bigint) {
  const platformDir = join(dir, name, 'platform');
  const storeFile = join(dir, name, 'wallet.sealed');
  const keyFile = join(dir, name, 'attestation.key');
  const attestation = AttestationService.create();
  const platform = await Platform.open({ dir: platformDir, attestation });
  await attestation.save(keyFile);
  const enclave = await platform.launch({
    entry: EXAMPLE_ENTRY,
    iface: exampleInterface,
    ocalls: exampleOcalls(),
    store: new FileSealedStore(storeFile),
  });
  await enclave.ecall('add', { amount: total });
  await enclave.terminate();
  return { platformDir, storeFile, keyFile, attestation };
}

test('attack: the host starts the same enclave twice from two processes on one platform dir and spends the wallet twice', async () => {
  const w = await walletWith('fork', 10n);
  // The host owns its storage: it hands each process its own copy of the committed blob.
  const storeA = join(dir, 'fork', 'a.sealed');
  const storeB = join(dir, 'fork', 'b.sealed');
  await copyFile(w.storeFile, storeA);
  await copyFile(w.storeFile, storeB);

  const a = spawnHost(w.platformDir, storeA, w.keyFile);
  let b: ReturnType<typeof spawnHost> | undefined;
  try {
    assert.deepEqual(await a.launched, { launched: true, total: '10' });
    b = spawnHost(w.platformDir, storeB, w.keyFile); // started once the first one runs
    const second = await b.launched;

    const paidOut: bigint[] = [];
    const withdrawA = await a.call('withdraw', 10n);
    if (withdrawA.ok) paidOut.push(10n);
    if (second.launched) {
      // Two live instances of one identity: the second is behind the counter. Its first seal is refused,
      // it re-reads the counter, and its next seal commits its own (stale) state on top of the first's.
      await b.call('add', 1n);
      const withdrawB = await b.call('withdraw', 11n);
      if (withdrawB.ok) paidOut.push(11n);
    }
    const total = paidOut.reduce((x, y) => x + y, 0n);
    assert.ok(
      total <= 10n,
      `the wallet held 10 and paid out ${total} (${paidOut.join(' + ')}): two instances forked its state`,
    );
    assert.equal(second.launchError, 'instance_busy', `second launch: ${JSON.stringify(second)}`);
    assert.match(second.message ?? '', /already running/);
  } finally {
    await Promise.all([a.close(), b?.close()]);
  }
});

test('attack: two handles on one counter both compare-and-set from the same value', async () => {
  const platformDir = join(dir, 'cas', 'platform');
  const counterId = counterIdFor('11'.repeat(32), 'default');
  const meta = { measurement: '11'.repeat(32), instance: 'default' };
  // Two counter stores on one platform dir: what two processes of the host each have.
  const first = new CounterStore(platformDir);
  const second = new CounterStore(platformDir);
  assert.equal((await first.read(counterId)).value, 0);
  assert.equal((await second.read(counterId)).value, 0);
  // The host picks the timing: it holds every libuv pool thread, so both compare-and-sets read the
  // counter before either write reaches the file.
  const release = await holdThreadPool(join(dir, 'cas'));
  const pending = [
    first.advance(counterId, meta, 0, 1, new Uint8Array(16).fill(0xaa)),
    second.advance(counterId, meta, 0, 1, new Uint8Array(16).fill(0xbb)),
  ];
  // Both advances run as microtasks up to their file write (the only pool work); all microtasks have run
  // before the event loop reaches setImmediate callbacks, so both have compared by then.
  await new Promise<void>((resolve) => setImmediate(resolve));
  await release();
  const outcomes = await Promise.allSettled(pending);
  const won = outcomes.filter((o) => o.status === 'fulfilled').length;
  assert.ok(
    won <= 1,
    `${won} compare-and-sets from 0 to 1 both succeeded: two successors committed at one counter value`,
  );
  await Promise.all([first.release(counterId), second.release(counterId)]);
});

test('the lock holder alone advances: another handle can neither take the lock nor move the counter', async () => {
  const platformDir = join(dir, 'held', 'platform');
  const counterId = counterIdFor('22'.repeat(32), 'default');
  const meta = { measurement: '22'.repeat(32), instance: 'default' };
  const holder = new CounterStore(platformDir);
  const other = new CounterStore(platformDir);
  await holder.lock(counterId);
  await assert.rejects(
    other.lock(counterId),
    (err: PlatformError) => err.code === 'instance_busy' && /held by process \d+/.test(err.message),
  );
  await assert.rejects(
    holder.lock(counterId),
    (err: PlatformError) => err.code === 'instance_busy',
    'a second lock through the same store',
  );
  const release = await holdThreadPool(join(dir, 'held'));
  const pending = [
    holder.advance(counterId, meta, 0, 1, new Uint8Array(16).fill(0xaa)),
    other.advance(counterId, meta, 0, 1, new Uint8Array(16).fill(0xbb)),
  ];
  await new Promise<void>((resolve) => setImmediate(resolve));
  await release();
  const [mine, theirs] = await Promise.allSettled(pending);
  assert.equal(mine!.status, 'fulfilled');
  assert.equal(theirs!.status, 'rejected');
  assert.equal(((theirs as PromiseRejectedResult).reason as PlatformError).code, 'counter_not_locked');
  assert.deepEqual(await other.read(counterId), { value: 1, tag: new Uint8Array(16).fill(0xaa) });

  // Released, the lock is free for the other handle, and the first can no longer advance.
  await holder.release(counterId);
  await assert.rejects(
    holder.advance(counterId, meta, 1, 2, new Uint8Array(16).fill(0xcc)),
    (err: PlatformError) => err.code === 'counter_not_locked',
  );
  await other.lock(counterId);
  await other.advance(counterId, meta, 1, 2, new Uint8Array(16).fill(0xbb));
  assert.equal((await holder.read(counterId)).value, 2);
  await Promise.all([holder.release(counterId), other.release(counterId)]);
});

test('SIGKILL of the process holding an instance: the next launch, from another process, succeeds at once', async () => {
  const w = await walletWith('kill', 3n);
  const a = spawnHost(w.platformDir, w.storeFile, w.keyFile);
  const platform = await Platform.open({ dir: w.platformDir, attestation: w.attestation });
  const launch = () =>
    platform.launch({
      entry: EXAMPLE_ENTRY,
      iface: exampleInterface,
      ocalls: exampleOcalls(),
      store: new FileSealedStore(w.storeFile),
    });
  try {
    assert.deepEqual(await a.launched, { launched: true, total: '3' });
    assert.deepEqual(await a.call('add', 1n), { ok: true, total: '4' });
    await assert.rejects(
      launch(),
      (err: EnclaveCallError) =>
        err.code === 'instance_busy' && new RegExp(`held by process ${a.child.pid}`).test(err.message),
    );
  } finally {
    a.child.kill('SIGKILL');
  }
  assert.equal((await a.exited).signal, 'SIGKILL');
  const b = spawnHost(w.platformDir, w.storeFile, w.keyFile);
  try {
    assert.deepEqual(await b.launched, { launched: true, total: '4' }, 'no stale lock left by the killed process');
    assert.deepEqual(await b.call('add', 1n), { ok: true, total: '5' });
  } finally {
    await b.close();
  }
  const again = await launch();
  try {
    assert.equal((await again.ecall('get_state', {})).total, 5n);
  } finally {
    await again.terminate();
  }
});

test('in one process: a second launch is refused while the first runs, through the same or another Platform; after terminate it succeeds', async () => {
  const w = await walletWith('same', 1n);
  const launchOn = (platform: Platform) =>
    platform.launch({
      entry: EXAMPLE_ENTRY,
      iface: exampleInterface,
      ocalls: exampleOcalls(),
      store: new FileSealedStore(w.storeFile),
    });
  const one = await Platform.open({ dir: w.platformDir, attestation: w.attestation });
  const two = await Platform.open({ dir: w.platformDir, attestation: w.attestation });
  const first = await launchOn(one);
  await assert.rejects(
    launchOn(one),
    (err: EnclaveCallError) => err.code === 'instance_busy' && /already running/.test(err.message),
  );
  await assert.rejects(
    launchOn(two),
    (err: EnclaveCallError) => err.code === 'instance_busy' && /already running/.test(err.message),
  );
  // Another instance name is another counter, and another lock.
  const other = await one.launch({
    entry: EXAMPLE_ENTRY,
    iface: exampleInterface,
    ocalls: exampleOcalls(),
    store: new FileSealedStore(join(dir, 'same', 'other.sealed')),
    instance: 'second',
  });
  await other.terminate();
  await first.ecall('add', { amount: 1n });
  await first.terminate();
  // terminate() resolved: the instance is free again, here and through the other Platform at once.
  const next = await launchOn(two);
  try {
    assert.equal((await next.ecall('get_state', {})).total, 2n);
  } finally {
    await next.terminate();
  }
  const last = await launchOn(one);
  await last.terminate();
});
