/** The ecall/ocall boundary: error codes, checks on both sides, termination, launch-time checks. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import {
  AttestationService,
  EnclaveCallError,
  FileSealedStore,
  Platform,
  defineInterface,
  type EnclaveHandle,
} from '../enclave-sim/index.ts';
import { serveEnclave } from '../enclave-sim/runtime.ts';
import {
  EXAMPLE_ENTRY,
  exampleInterface,
  exampleOcalls,
  tempDir,
  type ExampleInterface,
} from './fixtures/example-enclave/harness.ts';
import { waitFor } from './helpers/treasury-pair.ts';

let dir: string;
let cleanup: () => Promise<void>;
let platform: Platform;
let n = 0;
before(async () => {
  ({ dir, cleanup } = await tempDir('boundary'));
  platform = await Platform.open({ dir: join(dir, 'platform'), attestation: AttestationService.create() });
});
after(() => cleanup());

function launch(
  ocalls = exampleOcalls(),
  extra: {
    instance?: string;
    iface?: ExampleInterface;
    debug?: boolean;
    onOcallError?: (name: string, err: Error) => void;
  } = {},
): Promise<EnclaveHandle<ExampleInterface>> {
  n++;
  return platform.launch({
    entry: EXAMPLE_ENTRY,
    iface: extra.iface ?? exampleInterface,
    ocalls,
    debug: extra.debug,
    onOcallError: extra.onOcallError,
    store: new FileSealedStore(join(dir, `w${n}.sealed`)),
    instance: extra.instance ?? `i${n}`,
  });
}

/** A one-shot event a test waits for (an ocall reached the host, ...). */
function signal(): { fire: () => void; fired: Promise<void> } {
  let fire!: () => void;
  const fired = new Promise<void>((r) => {
    fire = r;
  });
  return { fire, fired };
}

const code = (expected: string) => (e: unknown) => {
  assert.ok(e instanceof EnclaveCallError, String(e));
  assert.equal(e.code, expected, e.message);
  return true;
};

test('ecalls and ocalls round-trip with typed values', async (t) => {
  const e = await launch();
  t.after(() => e.terminate());
  const before = Date.now();
  const r = await e.ecall('ping_host', { text: 'héllo' });
  assert.equal(r.echoed, 'héllo');
  assert.ok(r.at >= before);
  assert.equal((await e.ecall('add', { amount: 2n ** 63n })).total, 2n ** 63n);
});

test('the host refuses bad calls before sending; the enclave refuses them again', async (t) => {
  const e = await launch();
  t.after(() => e.terminate());
  await assert.rejects(e.ecall('nope' as 'add', { amount: 1n }), code('unknown_ecall'));
  await assert.rejects(e.ecall('add', { amount: 0n }), code('malformed_args'));
  await assert.rejects(e.ecallUnchecked('add', { amount: 0n }), code('malformed_args'));
  await assert.rejects(e.ecallUnchecked('add', { amount: 1n, then: () => 1 }), code('malformed_args'), 'not cloneable');
  await assert.rejects(
    e.ecallUnchecked('__store_sealed', { blob: new Uint8Array(10) }),
    code('unknown_ecall'),
    'built-in ocall names are not ecalls',
  );
});

test('program errors keep their code; unexpected errors and bad results are not forwarded', async (t) => {
  const e = await launch();
  t.after(() => e.terminate());
  await e.ecall('add', { amount: 10n });
  await assert.rejects(e.ecall('withdraw', { amount: 11n }), code('insufficient_funds'));
  assert.equal((await e.ecall('get_state', {})).total, 10n, 'a refused withdraw changed nothing');
  await assert.rejects(e.ecall('throw_unexpected', {}), (err: unknown) => {
    code('internal_error')(err);
    assert.ok(!(err as Error).message.includes('leaky'), 'the exception text stays inside');
    return true;
  });
  await assert.rejects(e.ecall('return_malformed', {}), code('invalid_result'));
  assert.equal((await e.ecall('get_state', {})).total, 10n);
});

test('ocall failures and bad host answers reach the enclave as errors', async (t) => {
  const failing = await launch({
    ...exampleOcalls(),
    echo: () => {
      throw Object.assign(new Error('link down'), { code: 'host_down' });
    },
  });
  t.after(() => failing.terminate());
  await assert.rejects(
    failing.ecall('ping_host', { text: 'x' }),
    (e: unknown) => code('ocall_failed')(e) && /host_down: link down/.test((e as Error).message),
  );

  const bad = await launch({ ...exampleOcalls(), echo: () => ({ text: 42 as unknown as string }) });
  t.after(() => bad.terminate());
  await assert.rejects(
    bad.ecall('ping_host', { text: 'x' }),
    (e: unknown) => code('ocall_failed')(e) && /invalid_ocall_result/.test((e as Error).message),
  );

  // A hostile host answering an ocall with a value that fails the schema, straight onto the channel.
  const asked = signal();
  const hostile = await launch({
    ...exampleOcalls(),
    echo: () => {
      asked.fire();
      return new Promise<never>(() => {});
    },
  });
  t.after(() => hostile.terminate());
  const call = hostile.ecall('ping_host', { text: 'x' });
  await asked.fired; // the enclave's ocall is out, waiting for its answer
  for (let id = 1; id <= 20; id++) hostile.postRaw({ t: 'ocall_result', id, result: { text: 42, __proto__: null } });
  await assert.rejects(call, code('invalid_ocall_result'));
});

test('one-way ocalls: delivered in order, never waited for, a failing handler reported to the host only', async (t) => {
  const notes: string[] = [];
  const failures: string[] = [];
  const e = await launch(
    {
      ...exampleOcalls(notes),
      note: ({ text }) => {
        if (text === 'hang') return new Promise<never>(() => {}); // a two-way ocall would never return
        if (text === 'fail') throw new Error('disk full');
        notes.push(text);
        return null;
      },
    },
    { onOcallError: (name, err) => failures.push(`${name}: ${err.message}`) },
  );
  t.after(() => e.terminate());
  assert.deepEqual(await e.ecall('notify_host', { texts: ['a', 'hang', 'b', 'fail', 'c'] }), { posted: 5 });
  await waitFor(() => notes.length >= 3 && failures.length >= 1, 15_000);
  assert.deepEqual(notes, ['a', 'b', 'c']);
  assert.deepEqual(failures, ['note: disk full']);
  // Only ocalls can be one-way: an ecall always answers.
  assert.throws(
    () => defineInterface({ ecalls: { x: { args: Type.Object({}), result: Type.Null(), oneway: true } }, ocalls: {} }),
    /only ocalls can be one-way/,
  );
});

test('pending ecalls reject with enclave_terminated when the enclave stops', async () => {
  const asked = signal();
  const e = await launch({
    ...exampleOcalls(),
    echo: () => {
      asked.fire();
      return new Promise<never>(() => {});
    },
  });
  const pending = e.ecall('ping_host', { text: 'x' }).then(
    () => null,
    (err: unknown) => err,
  );
  await asked.fired; // the ecall is inside the enclave, waiting on its ocall
  await e.terminate();
  code('enclave_terminated')(await pending);
  await assert.rejects(e.ecall('get_state', {}), code('enclave_terminated'));
});

test('launch checks the interface and refuses a second live instance', async (t) => {
  const changed = defineInterface({
    ...exampleInterface,
    ecalls: { ...exampleInterface.ecalls, extra: { args: Type.Object({}), result: Type.Null() } },
  });
  await assert.rejects(
    launch(exampleOcalls(), { iface: changed as unknown as ExampleInterface }),
    code('interface_mismatch'),
  );
  const first = await launch(exampleOcalls(), { instance: 'solo' });
  t.after(() => first.terminate());
  await assert.rejects(launch(exampleOcalls(), { instance: 'solo' }), code('instance_busy'));
  const other = await launch(exampleOcalls(), { instance: 'solo-2' });
  await other.terminate();
});

test('interfaces reject reserved names; serveEnclave refuses to run outside an enclave', () => {
  assert.throws(
    () => defineInterface({ ecalls: { __sneaky: { args: Type.Object({}), result: Type.Null() } }, ocalls: {} }),
    TypeError,
  );
  assert.throws(
    () => defineInterface({ ecalls: {}, ocalls: { 'bad name': { args: Type.Object({}), result: Type.Null() } } }),
    TypeError,
  );
  assert.throws(() => serveEnclave(exampleInterface, {} as never), /inside an enclave/);
});
