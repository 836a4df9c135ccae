// run-tests lane: in-process
/**
 * Multi-hop records in the sealed state: records sealed before each phase had its own type (one flat
 * shape with optional fields; test/fixtures/multihop-records-flat.json, captured from real payments)
 * still decode, each into the record of its phase with exactly that phase's fields, and records in the
 * current shape survive a seal unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeState, encodeState, type TreasuryState } from '../src/enclave/treasury/state.ts';
import type { MhPayment, MhPhase } from '../src/enclave/treasury/multihop/records.ts';

const fixture = JSON.parse(readFileSync(new URL('./fixtures/multihop-records-flat.json', import.meta.url), 'utf8')) as {
  records: Record<string, Record<string, unknown>>;
};

/** A sealed state holding `records` as they were written (the rest of the state is irrelevant here). */
function sealedWith(records: Record<string, unknown>): Uint8Array {
  const state = { version: 1, identityKey: '00', config: {}, nextDeposit: 0, deposits: {}, channels: {} };
  return new TextEncoder().encode(JSON.stringify({ ...state, multihop: records }));
}

const BASE = ['pid', 'route', 'index', 'amounts', 'feeRate', 'phase'];
const FIELDS: Record<MhPhase, string[]> = {
  locked: [...BASE, 'hops'],
  signed: [...BASE, 'hops', 'tx', 'txid'],
  committed: [...BASE, 'hops', 'tx', 'txid', 'tauOut'],
  released: [...BASE, 'hops', 'txid', 'tauOut'],
  done: [...BASE, 'txid', 'resolvedAt', 'quiet'],
  aborted: [...BASE, 'code', 'txid', 'resolvedAt'],
};

test('every flat record sealed before the phase types decodes into its phase, with exactly its fields', () => {
  const keys = Object.keys(fixture.records);
  assert.ok(keys.length >= 12, 'the fixture covers every role in every phase it reaches');
  const state = decodeState(sealedWith(Object.fromEntries(keys.map((k) => [k, fixture.records[k]]))));
  for (const key of keys) {
    const raw = fixture.records[key]!;
    const rec = state.multihop![key]!;
    assert.equal(rec.phase, raw.phase, key);
    assert.deepEqual(Object.keys(rec).sort(), [...FIELDS[rec.phase]].sort(), `${key}: fields`);
    for (const f of ['pid', 'route', 'index', 'feeRate', 'tx', 'txid', 'code', 'resolvedAt'])
      if (f in raw && f in rec) assert.deepEqual(rec[f as keyof MhPayment], raw[f], `${key}: ${f}`);
    assert.deepEqual(
      rec.amounts,
      (raw.amounts as string[]).map((a) => BigInt(a.slice(0, -1))),
      `${key}: amounts`,
    );
    if ('hops' in rec) {
      assert.equal(rec.hops.length, (raw.hops as unknown[]).length, `${key}: hops`);
      assert.equal(typeof rec.hops[0]?.amount, 'bigint', `${key}: hop amounts are bigints`);
    }
    if (rec.phase === 'committed' || rec.phase === 'released') assert.equal(rec.tauOut, !!raw.tauOut, key);
    // A hop that handed τ out never passed the unlock wave on: `quiet` now says so alone.
    if (rec.phase === 'done') assert.equal(rec.quiet, !!raw.quiet || !!raw.tauOut, key);
  }
  const frozen = state.multihop!['intermediary committed tauOut']!;
  assert.ok(frozen.phase === 'committed' && frozen.tauOut, 'a frozen hop stays frozen');
  const aborted = state.multihop!['payer aborted']!;
  assert.ok(aborted.phase === 'aborted' && aborted.txid === null && aborted.code === raw('payer aborted').code);
});

function raw(key: string): Record<string, unknown> {
  return fixture.records[key]!;
}

test('a decoded record survives sealing again unchanged; a flat record missing τ in a phase that has it is refused', () => {
  const once = decodeState(sealedWith(fixture.records));
  const again = decodeState(encodeState(once));
  assert.deepEqual(again.multihop, once.multihop);
  const broken = { ...raw('intermediary signed') };
  delete broken.tx;
  assert.throws(() => decodeState(sealedWith({ x: broken })), /has no tx/);
});

test('current records are sealed as they are: encode then decode gives the same object', () => {
  const state = decodeState(sealedWith(fixture.records)) as TreasuryState;
  const bytes = encodeState(state);
  const text = new TextDecoder().decode(bytes);
  const sealed = (JSON.parse(text) as { multihop: Record<string, Record<string, unknown>> }).multihop;
  for (const [key, rec] of Object.entries(state.multihop!))
    assert.deepEqual(Object.keys(sealed[key]!).sort(), Object.keys(rec).sort(), `${key}: sealed with its own fields`);
});
