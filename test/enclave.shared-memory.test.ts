/**
 * Shared memory from a hostile host. postMessage keeps a SharedArrayBuffer shared, so bytes the host hands
 * the enclave that way stay writable by another host thread while the enclave checks and uses them: it
 * could parse one header and authenticate another. The enclave must refuse such bytes wherever they enter.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { payments } from 'bitcoinjs-lib';
import { AttestationService, EnclaveCallError, Platform, type SealedStore } from '../enclave-sim/index.ts';
import { EXAMPLE_ENTRY, exampleInterface, exampleOcalls, tempDir } from './fixtures/example-enclave/harness.ts';
import { TREASURY_PROGRAM } from '../src/node/enclave-client.ts';
import { TreasuryInterface } from '../src/enclave/treasury/interface.ts';
import { NETWORK } from '../src/enclave/treasury/transactions.ts';
import { SecureSession, SessionError } from '../src/enclave/protocol/session.ts';

let root: string;
let cleanup: () => Promise<void>;
const attestation = AttestationService.create();
before(async () => ({ dir: root, cleanup } = await tempDir('shared-memory')));
after(() => cleanup());

let caseNo = 0;
const platformDir = () => join(root, `case-${++caseNo}`);

const code = (expected: string) => (e: unknown) => {
  assert.ok(e instanceof EnclaveCallError, String(e));
  assert.equal(e.code, expected, e.message);
  return true;
};

/** Expects the launch to be refused with `expected` (an enclave that launched anyway is stopped). */
async function refusedAtLaunch(launching: Promise<{ terminate(): Promise<void> }>, expected: string): Promise<void> {
  const outcome = await launching.then(
    async (e) => {
      await e.terminate();
      return new Error('launched');
    },
    (err: unknown) => err,
  );
  code(expected)(outcome);
}

/** Bytes in host-shared memory: a view over a SharedArrayBuffer holding a copy of `bytes`. */
function shared(bytes: Uint8Array): Uint8Array {
  const view = new Uint8Array(new SharedArrayBuffer(bytes.length));
  view.set(bytes);
  return view;
}

/** A store the test fully controls: remembers every blob stored; `load` answers whatever `answer` says. */
function recordingStore() {
  const blobs: Uint8Array[] = [];
  let answer: () => Uint8Array | null = () => blobs.at(-1) ?? null;
  const store: SealedStore = {
    store: async (blob) => {
      blobs.push(blob.slice());
    },
    load: async () => answer(),
  };
  return {
    store,
    blobs,
    answerWith: (f: () => Uint8Array | null) => {
      answer = f;
    },
  };
}

/**
 * A host thread that keeps rewriting `bytes[at .. at + a.length)` with `a`, then `b`, then `a`..., holding
 * each for a random spin (so windows of many widths get hit), until stopped.
 */
async function startFlipper(bytes: Uint8Array, at: number, a: Uint8Array, b: Uint8Array, maxSpin: number) {
  const ctl = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `
    const { workerData, parentPort } = require('node:worker_threads');
    const { bytes, at, a, b, maxSpin, ctl } = workerData;
    let x = 0, seed = 12345, first = true;
    const spin = () => { seed = (seed * 1103515245 + 12345) >>> 0; const n = seed % maxSpin; for (let i = 0; i < n; i++) x = (x + i) | 0; };
    while (Atomics.load(ctl, 0) === 0) {
      bytes.set(b, at); spin();
      bytes.set(a, at); spin();
      if (first) { first = false; parentPort.postMessage('running'); }
    }
    parentPort.postMessage(x);
  `,
    { eval: true, workerData: { bytes, at, a, b, maxSpin, ctl } },
  );
  await once(worker, 'message');
  return async () => {
    Atomics.store(ctl, 0, 1);
    await once(worker, 'exit');
  };
}

// ---- sealed state -----------------------------------------------------------------------------------

const COUNTER_AT = 85; // sealing.ts layout: counter (8) | tag (16) | prevTag (16)
const HEADER_FIELDS_END = 125;

test('a sealed blob in shared memory whose header is rewritten during unseal: the old state is never accepted', async () => {
  const dir = platformDir();
  const rec = recordingStore();
  const platform = await Platform.open({ dir, attestation });
  const launch = () =>
    platform.launch({ entry: EXAMPLE_ENTRY, iface: exampleInterface, ocalls: exampleOcalls(), store: rec.store });
  const first = await launch();
  await first.ecall('add', { amount: 10n }); // state A
  await first.ecall('add', { amount: 20n }); // state B, the committed one
  await first.terminate();
  const [blobA, blobB] = rec.blobs.slice(-2) as [Uint8Array, Uint8Array];
  assert.equal(await platform.readCounter(first.measurement), 3);

  // The host answers load with blob A in shared memory, and another thread swaps A's counter and tags for
  // B's: if the enclave reads the forged header for its rollback check and the genuine one for GCM, it
  // accepts A (total 10) under B's counter: the 20 spent since is back.
  const view = shared(blobA);
  rec.answerWith(() => view);
  const stop = await startFlipper(
    view,
    COUNTER_AT,
    blobA.slice(COUNTER_AT, HEADER_FIELDS_END),
    blobB.slice(COUNTER_AT, HEADER_FIELDS_END),
    20_000,
  );
  const refusals = new Map<string, number>();
  let accepted = 0;
  let attempts = 0;
  try {
    // Bounded to keep the suite short: on the code before the fix, 90 attempts saw 6 acceptances.
    const deadline = Date.now() + 20_000;
    for (; attempts < 60 && Date.now() < deadline; attempts++) {
      let e;
      try {
        e = await launch();
      } catch (err) {
        const c = err instanceof EnclaveCallError ? err.code : String(err);
        refusals.set(c, (refusals.get(c) ?? 0) + 1);
        continue;
      }
      const { total } = await e.ecall('get_state', {});
      await e.terminate();
      if (total === 10n) accepted++;
    }
  } finally {
    await stop();
  }
  const seen = `${attempts} attempts: accepted A ${accepted} times; refusals ${JSON.stringify(Object.fromEntries(refusals))}`;
  assert.equal(accepted, 0, seen);
  assert.deepEqual([...refusals.keys()], ['invalid_ocall_result'], seen);
  assert.equal(refusals.get('invalid_ocall_result'), attempts, seen);

  // Without shared memory, A is refused as the rollback it is, and B unseals.
  rec.answerWith(() => blobA);
  await refusedAtLaunch(launch(), 'rollback');
  rec.answerWith(() => blobB);
  const e = await launch();
  assert.equal((await e.ecall('get_state', {})).total, 30n);
  await e.terminate();
});

test('a genuine, current sealed blob answered in shared memory is refused; the same bytes copied unseal', async () => {
  const rec = recordingStore();
  const platform = await Platform.open({ dir: platformDir(), attestation });
  const launch = () =>
    platform.launch({ entry: EXAMPLE_ENTRY, iface: exampleInterface, ocalls: exampleOcalls(), store: rec.store });
  const first = await launch();
  await first.ecall('add', { amount: 7n });
  await first.terminate();
  const latest = rec.blobs.at(-1)!;
  rec.answerWith(() => shared(latest));
  await refusedAtLaunch(launch(), 'invalid_ocall_result');
  rec.answerWith(() => latest);
  const e = await launch();
  assert.equal((await e.ecall('get_state', {})).total, 7n);
  await e.terminate();
});

// ---- ecall args and ocall results ---------------------------------------------------------------------

test('ecall args holding shared memory anywhere are refused with shared_memory; the enclave keeps working', async (t) => {
  const platform = await Platform.open({ dir: platformDir(), attestation });
  const e = await platform.launch({
    entry: EXAMPLE_ENTRY,
    iface: exampleInterface,
    ocalls: exampleOcalls(),
    store: recordingStore().store,
  });
  t.after(() => e.terminate());
  const sab = new SharedArrayBuffer(64);
  const forms: [string, unknown][] = [
    ['a Uint8Array over a SharedArrayBuffer', { digest: new Uint8Array(sab, 0, 32) }],
    ['a DataView over one', { digest: new Uint8Array(32), x: new DataView(sab) }],
    ['a bare SharedArrayBuffer', { digest: new Uint8Array(32), x: sab }],
    [
      'one deep in a Map inside an array',
      { digest: new Uint8Array(32), x: [1, 'a', { m: new Map([['k', new Set([new Int32Array(sab)])]]) }] },
    ],
  ];
  for (const [what, args] of forms) {
    await assert.rejects(e.ecallUnchecked('sign_digest', args), code('shared_memory'), what);
  }
  await assert.rejects(e.ecallUnchecked('add', { amount: 5n, x: new Uint8Array(sab) }), code('shared_memory'));
  assert.equal((await e.ecall('add', { amount: 5n })).total, 5n, 'the refused add changed nothing');
  assert.equal((await e.ecall('sign_digest', { digest: new Uint8Array(32).fill(1) })).signature.length, 64);
});

test('an ocall answered with shared memory rejects with invalid_ocall_result', async (t) => {
  const platform = await Platform.open({ dir: platformDir(), attestation });
  const ocalls = exampleOcalls();
  let hostile = true;
  // `echo`'s result schema allows extra keys, so the host's answer passes every schema check.
  const e = await platform.launch({
    entry: EXAMPLE_ENTRY,
    iface: exampleInterface,
    store: recordingStore().store,
    ocalls: {
      ...ocalls,
      echo: ({ text }) =>
        hostile ? ({ text, pad: new Uint8Array(new SharedArrayBuffer(8)) } as { text: string }) : { text },
    },
  });
  t.after(() => e.terminate());
  await assert.rejects(e.ecall('ping_host', { text: 'x' }), code('invalid_ocall_result'));
  hostile = false;
  assert.equal((await e.ecall('ping_host', { text: 'x' })).echoed, 'x');
});

test('the treasury program refuses a peer_recv frame in shared memory and keeps serving', async (t) => {
  const platform = await Platform.open({ dir: platformDir(), attestation });
  const closed: string[] = [];
  const e = await platform.launch({
    entry: TREASURY_PROGRAM,
    iface: TreasuryInterface,
    store: recordingStore().store,
    ocalls: {
      net_send: () => null,
      net_close: ({ conn }) => {
        closed.push(conn);
        return null;
      },
      event: () => null,
      chain_get_txout: () => null,
    },
  });
  t.after(() => e.terminate());
  await e.ecall('init', {
    trust_anchor: attestation.trustAnchor,
    allowed_measurements: [e.measurement],
    min_confirmations: 1,
    payout_address: payments.p2wpkh({ hash: randomBytes(20), network: NETWORK }).address!,
  });
  await e.ecall('peer_accept', { conn: 'c1' });
  const frame = shared(randomBytes(200));
  await assert.rejects(
    e.ecallUnchecked('peer_recv', { conn: 'c1', frames: [new Uint8Array(16), frame] }),
    code('shared_memory'),
  );
  assert.deepEqual(closed, [], 'the refused call never reached the treasury (no teardown)');
  assert.equal((await e.ecall('get_info', {})).node_id.length, 66);
});

// ---- session frames -----------------------------------------------------------------------------------

test('SecureSession.open: a replayed frame whose counter another thread rewrites during open is never accepted', async () => {
  const input = {
    ecdh: randomBytes(32),
    initiatorNonce: randomBytes(32),
    responderNonce: randomBytes(32),
    initiatorId: randomBytes(33),
    responderId: randomBytes(33),
  };
  const sender = new SecureSession({ ...input, isInitiator: true });
  const receiver = new SecureSession({ ...input, isInitiator: false });
  const genuine = sender.seal(new TextEncoder().encode('pay 1000 sat'));
  assert.equal(new TextDecoder().decode(receiver.open(genuine)), 'pay 1000 sat');

  // Replaying frame 1: the counter byte is flipped between 1 (what was authenticated) and 2 (the next
  // expected). Reading 2 for the order check and authenticating 1 would accept the payment twice.
  const frame = shared(genuine);
  const stop = await startFlipper(frame, 7, Uint8Array.of(1), Uint8Array.of(2), 200);
  const codes = new Map<string, number>();
  let accepted = 0;
  let attempts = 0;
  try {
    const deadline = Date.now() + 10_000;
    for (; attempts < 20_000 && Date.now() < deadline; attempts++) {
      try {
        receiver.open(frame);
        accepted++;
        break;
      } catch (err) {
        assert.ok(err instanceof SessionError, String(err));
        codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
      }
    }
  } finally {
    await stop();
  }
  const seen = `${attempts} attempts: accepted ${accepted}; refusals ${JSON.stringify(Object.fromEntries(codes))}`;
  assert.equal(accepted, 0, seen);
  assert.ok((codes.get('replayed') ?? 0) > 0, seen);
  // The session is unharmed: the real next frame opens.
  assert.equal(new TextDecoder().decode(receiver.open(sender.seal(Uint8Array.of(0x61)))), 'a');
});
