/**
 * Multi-hop payments through committee hops (docs/protocol/multihop.md, "Committee hops"), in-process:
 * 2-of-3 committees in every position of a path, alone and mixed with lone treasuries; every phase
 * replicated before its message leaves; τ signed by m members where a committee's own deposits are in it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { payments } from 'bitcoinjs-lib';
import { checkTau, committeeLine, replicated, type Kind } from './helpers/committee-line.ts';
import { balances, outcome, unlocked } from './helpers/multihop-views.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { WAIT_MS } from './helpers/two-committees.ts';
import { decodeState } from '../src/enclave/treasury/state.ts';
import { NETWORK } from '../src/enclave/treasury/transactions.ts';

const PATHS: Kind[][] = [
  ['committee', 'lone', 'lone'],
  ['lone', 'committee', 'lone'],
  ['lone', 'lone', 'committee'],
  ['committee', 'committee', 'committee'],
  ['lone', 'committee', 'committee', 'lone'],
];

for (const kinds of PATHS) {
  test(`a routed payment through ${kinds.join(' → ')}: every channel new, every member agrees, τ valid`, async () => {
    const { mesh, hops, nodes, channels } = await committeeLine(kinds);
    const payer = nodes[0]!;
    const dest = nodes[nodes.length - 1]!;
    // τ as the payer committed it: complete, for the check below.
    let tau: string | undefined;
    mesh.onSeal = (name, bytes) => {
      if (name !== payer.name) return;
      for (const r of Object.values(decodeState(bytes).multihop ?? {})) if (r.phase === 'committed') tau = r.tx;
    };
    const before = balances(nodes, channels);
    const res = await payer.treasury.payMultihop(dest.treasury.nodeId, 1_000, 1);
    assert.deepEqual(
      res.route,
      nodes.map((n) => n.treasury.info().treasury_id),
      'routed by treasury ids',
    );
    await waitFor(() => unlocked(hops.flatMap((h) => h.members)) && replicated(hops), WAIT_MS);
    assert.deepEqual(
      outcome(nodes, channels, before),
      channels.map(() => 1_000n),
      'every channel in the new state',
    );
    // τ: every deposit of the path, each validly signed; each side of each channel paid its new balance.
    assert.ok(tau, 'the payer committed a τ');
    const tx = checkTau(mesh, tau);
    assert.equal(tx.ins.length, channels.length * 2);
    for (const [i, ch] of channels.entries()) {
      for (const [n, side] of [
        [nodes[i]!, 'from'],
        [nodes[i + 1]!, 'to'],
      ] as const) {
        const script = payments.p2wpkh({ address: n.payoutAddress, network: NETWORK }).output!;
        const paid = tx.outs.filter((o) => Buffer.from(o.script).equals(script)).reduce((s, o) => s + o.value, 0n);
        const v = n.treasury.channel(ch);
        // Outputs to one script are merged: an intermediary's two channels pay it once.
        const want = channels
          .filter((c) => n.treasury.state.channels[c])
          .reduce((s, c) => s + BigInt(n.treasury.channel(c).local_balance_sat), 0n);
        if (n === payer) assert.ok(paid < want && paid > want - 1_000n, `payer ${side}: its balance less τ's fee`);
        else assert.equal(paid, want, `${n.name} (${side} of ${v.channel_id.slice(0, 8)}): its new balances`);
      }
    }
    mesh.onSeal = undefined;
  });
}
