// run-tests lane: in-process
/**
 * Payment refs across a committee (src/enclave/committee/update-refs.ts): the update that carries a keyed
 * debit carries its ref, with the host's payment id; each backup keeps it in its own state, sealed with the
 * adoption and announced to its host (`pay_refs_held`), after the primary's host has dropped it too, until
 * its own host drops it. Malformed refs in an update are left out and change nothing else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { committeeWithPeer, payAndWait, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { decodeState } from '../src/enclave/treasury/state.ts';
import { keyRef } from '../src/node/payment-journal.ts';

async function setup() {
  const { mesh, p, b1, b2, q, ch } = await committeeWithPeer();
  await payAndWait(p, ch, [300]);
  return { mesh, p, b1, b2, q, ch };
}

const sealedRefs = (n: MeshNode) => decodeState(n.sealed!).payRefs;

test("backups keep an update's payment refs, sealed, until their own host drops them", async () => {
  const { p, b1, b2, ch } = await setup();
  const r1 = keyRef('order-1', 'req-1');
  const [res] = await p.treasury.pay([{ channel_id: ch, amount_sat: 700, ref: { ...r1, id: 'p7' } }]);
  assert.equal(res!.ok, true);
  // pay answers once every backup has sealed the update: the ref is in that seal, with the host's id.
  const want = { ch, pos: 1000n, amt: 700, fp: r1.fp, id: 'p7' };
  for (const b of [b1, b2]) {
    assert.deepEqual(sealedRefs(b), { [r1.key]: want }, `${b.name} sealed the ref`);
    assert.deepEqual(b.treasury.payRefs(), [
      { key: r1.key, fp: r1.fp, channel_id: ch, position: '1000', amount_sat: 700, payment_id: 'p7' },
    ]);
    await waitFor(() => b.events.some((e) => e.type === 'pay_refs_held'));
  }
  assert.equal(p.events.filter((e) => e.type === 'pay_refs_held').length, 0, 'the primary adopts no update');
  // A host that asks again for a key whose ref the enclave holds is refused; nothing moves.
  const [twice] = await p.treasury.pay([{ channel_id: ch, amount_sat: 700, ref: r1 }]);
  assert.deepEqual(twice!.ok ? 'ok' : twice!.code, 'invalid_argument');
  assert.equal(p.treasury.channel(ch).total_sent_sat, '1000');

  // The primary's host journals r1 and drops it: the backups keep theirs (the drop is no replicated change).
  await p.treasury.pay([{ channel_id: ch, amount_sat: 5 }], [r1.key]);
  assert.deepEqual(p.treasury.payRefs(), []);
  await waitFor(() => b1.treasury.channel(ch).total_sent_sat === '1005');
  await waitFor(() => b2.treasury.channel(ch).total_sent_sat === '1005');
  for (const b of [b1, b2]) assert.deepEqual(sealedRefs(b), { [r1.key]: want });

  // b1's host journals it and drops it: gone from b1 at its next seal, still held by b2.
  assert.deepEqual(b1.treasury.payRefs([r1.key]), []);
  await b1.treasury.commit();
  assert.equal(sealedRefs(b1), undefined);
  assert.equal(b2.treasury.payRefs().length, 1);
  // A later keyed payment travels in its own update: b1 gets only it, not r1 again.
  const r2 = keyRef('order-2', 'req-2');
  await p.treasury.pay([{ channel_id: ch, amount_sat: 20, ref: r2 }]);
  assert.deepEqual(
    b1.treasury.payRefs().map((r) => [r.key, r.position, r.payment_id]),
    [[r2.key, '1025', undefined]],
  );
});

test('malformed refs in an update are left out; the update and its well-formed refs are adopted', async () => {
  const { p, b1, b2, q, ch } = await setup();
  const good = keyRef('good', 'req');
  const hex = (c: string) => c.repeat(32);
  const ref = { ch, pos: 300n, amt: 300, fp: good.fp };
  // The primary's word, as a compromised primary could give it: its refs go out with its next update.
  p.treasury.state.payRefs = {
    [good.key]: { ...ref, id: 'p1' },
    zz: ref, // not a key hash
    [hex('1')]: { ...ref, fp: 'nope' },
    [hex('2')]: { ...ref, ch: hex('9') }, // a channel the backups do not hold
    [hex('3')]: { ...ref, pos: 311n }, // beyond the channel's sent total
    [hex('4')]: { ...ref, pos: 200n }, // a debit larger than its position
    [hex('5')]: { ...ref, amt: 1.5 },
    [hex('6')]: { ...ref, id: 'Not An Id' },
    [hex('7')]: { ...ref, pos: 300 as unknown as bigint }, // a number, not the update's bigint
  };
  await payAndWait(p, ch, [10]);
  for (const b of [b1, b2]) {
    await waitFor(() => b.treasury.channel(ch).total_sent_sat === '310');
    assert.deepEqual(
      b.treasury.payRefs().map((r) => [r.key, r.position, r.payment_id]),
      [[good.key, '300', 'p1']],
      `${b.name} keeps only the well-formed ref`,
    );
    assert.deepEqual(Object.keys(sealedRefs(b) ?? {}), [good.key]);
    const mine = b.treasury.channel(ch);
    const truth = p.treasury.channel(ch);
    assert.equal(mine.total_sent_sat, truth.total_sent_sat);
    assert.equal(mine.total_received_sat, truth.total_received_sat);
  }
  assert.equal(q.treasury.channel(ch).total_received_sat, '310');
  // Replication goes on: the next update reaches the backups.
  await payAndWait(p, ch, [20]);
  await waitFor(() => b1.treasury.channel(ch).total_sent_sat === '330');
});
