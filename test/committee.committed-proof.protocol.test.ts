// run-tests lane: in-process
/**
 * The primary checks each backup's "I hold payment pid committed" statement when it arrives
 * (src/enclave/committee/committed-proof.ts, CommitStore). The statements ride in acknowledgements whose
 * own signature covers only the sequence number, and the middle backup relays the tail's. A lying backup
 * here sends, after each genuine statement, a forged one for the same payment (its own key, the next
 * view's fields: it verifies for nothing) and a flood of statements for payments that do not exist.
 * Unchecked, the forged one replaced the genuine one and the next hop refused every COMMIT
 * (`multihop_commit_unproven`); checked, the round completes as if the liar had said only the truth.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { committeeLine } from './helpers/committee-line.ts';
import { balances, outcome, unlocked } from './helpers/multihop-views.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { WAIT_MS, type MeshNode } from './helpers/treasury-mesh.ts';
import { hexToBytes } from '../enclave-sim/encoding.ts';
import { signCommitted } from '../src/enclave/committee/committed-proof.ts';
import type { SessionMessage } from '../src/enclave/protocol/messages.ts';

test('forged and flooded committed statements after the genuine ones: dropped, the round completes all new', async () => {
  const line = await committeeLine(['lone', 'committee', 'lone']);
  const [alice, bob, carol] = line.nodes as [MeshNode, MeshNode, MeshNode];
  const liar = line.hops[1]!.members[2]!;
  const t = liar.treasury as unknown as { sendNow(peer: string, msg: SessionMessage): void };
  const send = t.sendNow.bind(liar.treasury);
  const key = hexToBytes(liar.treasury.state.identityKey);
  const epoch = () => bob.treasury.info().committee!.epoch ?? 0;
  let lies = 0;
  t.sendNow = (peer, msg) => {
    if (msg.t === 'c_ack' && msg.sigs)
      msg = {
        ...msg,
        sigs: msg.sigs.map((s) => {
          if (!s.committed?.length) return s;
          const forged = s.committed.flatMap((c) => [c, signCommitted(bob.treasury.nodeId, epoch() + 1, c.pid, key)]);
          const flood = Array.from({ length: 300 }, (_, i) => ({
            pid: i.toString(16).padStart(64, 'f'),
            sig: '00'.repeat(64),
          }));
          lies += forged.length / 2;
          return { ...s, committed: [...forged, ...flood] };
        }),
      };
    send(peer, msg);
  };

  const before = balances(line.nodes, line.channels);
  await alice.treasury.payMultihop(carol.treasury.nodeId, 1_000, 1);
  await waitFor(() => unlocked(line.hops.flatMap((h) => h.members)), WAIT_MS);
  assert.ok(lies > 0, 'the liar did send forged statements');
  assert.deepEqual(
    carol.events.filter((e) => e.type === 'multihop_commit_unproven'),
    [],
    'every COMMIT carried a proof carol accepted',
  );
  assert.deepEqual(outcome(line.nodes, line.channels, before), [1_000n, 1_000n], 'every channel in the new state');
  assert.equal(carol.treasury.channel(line.channels[1]!).total_received_sat, '1000');
});
