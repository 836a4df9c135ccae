/**
 * A line of in-process treasuries for multi-hop tests where any position may be a 2-of-3 committee
 * (treasury-mesh.ts: real signatures and shares, a fake chain): its primary is on the path, its two
 * backups replicate. Every channel is funded on both sides and the graph gossiped. The checks of τ are
 * made from what the test knows itself (the funding outputs on the fake chain), with tiny-secp256k1.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Transaction, script as bscript } from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { bytesToHex } from '../../enclave-sim/encoding.ts';
import { fundedChannel, gossip, Mesh, type MeshNode } from './treasury-mesh.ts';
import { TIMEOUTS } from './two-committees.ts';

export type Kind = 'lone' | 'committee';

export interface HopNode {
  /** The treasury on the path (a committee's primary). */
  node: MeshNode;
  /** Every member (just `node` for a lone treasury). */
  members: MeshNode[];
}

export async function committeeLine(kinds: Kind[], deposit = 100_000n, mesh = new Mesh(TIMEOUTS)) {
  const hops: HopNode[] = [];
  for (const [i, kind] of kinds.entries()) {
    const name = `n${i}`;
    if (kind === 'lone') {
      const node = await mesh.add(name);
      hops.push({ node, members: [node] });
    } else {
      const members = await mesh.committee([name, `${name}b1`, `${name}b2`]);
      hops.push({ node: members[0]!, members });
    }
  }
  const channels: string[] = [];
  for (let i = 0; i + 1 < hops.length; i++)
    channels.push(await fundedChannel(mesh, hops[i]!.node, hops[i + 1]!.node, deposit));
  await gossip(
    mesh,
    hops.map((h) => h.node.name),
  );
  return { mesh, hops, nodes: hops.map((h) => h.node), channels };
}

/** Every member of every committee holds what its primary holds: the same totals, locks and records' phases. */
export function replicated(hops: HopNode[]): boolean {
  return hops.every(({ node, members }) =>
    members.every((m) => {
      const mine = node.treasury.state;
      const theirs = m.treasury.state;
      const chans = Object.values(mine.channels).every((c) => {
        const r = theirs.channels[c.id];
        return r && r.sent === c.sent && r.received === c.received && r.lockedBy === c.lockedBy;
      });
      const recs = Object.values(mine.multihop ?? {}).every((r) => theirs.multihop?.[r.pid]?.phase === r.phase);
      return chans && recs;
    }),
  );
}

/**
 * Checks that every input of τ spends a deposit the test funded on the fake chain, with m signatures that
 * verify (tiny-secp256k1) over this transaction's BIP143 digest against later and later keys of the
 * witness script, itself the P2WSH program of the funding output.
 */
export function checkTau(mesh: Mesh, hex: string): Transaction {
  const tx = Transaction.fromHex(hex);
  for (const [index, input] of tx.ins.entries()) {
    const txid = bytesToHex(Uint8Array.from(input.hash).reverse());
    const funding = Transaction.fromHex(mesh.chain.txs.get(txid)!.hex).outs[input.index]!;
    const witness = input.witness;
    const ws = witness[witness.length - 1]!;
    assert.equal(
      createHash('sha256').update(ws).digest('hex'),
      bytesToHex(funding.script.subarray(2)),
      `input ${index}: the witness script is the funding output's program`,
    );
    const ops = bscript.decompile(ws)!;
    const m = (ops[0] as number) - 0x50;
    const keys = ops.slice(1, ops.length - 2) as Uint8Array[];
    const sigs = witness.slice(1, -1);
    assert.equal(sigs.length, m, `input ${index}: ${m} signatures`);
    let last = -1;
    for (const sig of sigs) {
      const { signature, hashType } = bscript.signature.decode(sig);
      const digest = tx.hashForWitnessV0(index, ws, funding.value, hashType);
      const k = keys.findIndex((key, i) => i > last && ecc.verify(digest, key, signature));
      assert.ok(k > last, `input ${index}: a signature that verifies against a later key than the previous one`);
      last = k;
    }
  }
  return tx;
}
