// run-tests lane: in-process
/**
 * update-rules.ts rule by rule: a backup's replica (from a real in-process committee with a channel funded
 * both ways) against the primary's genuine next update, edited one rule at a time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { payments } from 'bitcoinjs-lib';
import { Mesh, type MeshNode } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { bytesToHex, hexToBytes } from '../enclave-sim/encoding.ts';
import { replicaOf, type ReplicaBody } from '../src/enclave/committee/update.ts';
import { checkUpdate } from '../src/enclave/committee/update-rules.ts';
import { signPaid, signPayout } from '../src/enclave/protocol/peer-sigs.ts';
import { publicKeyOf, randomPrivateKey } from '../src/crypto/secp256k1.ts';
import { buildDepositScript, NETWORK, payoutScriptFor } from '../src/enclave/treasury/transactions.ts';
import type { TreasuryState } from '../src/enclave/treasury/state.ts';

async function scene() {
  const mesh = new Mesh();
  const [p, b1, b2] = (await mesh.committee(['p', 'b1', 'b2'])) as [MeshNode, MeshNode, MeshNode];
  const q = await mesh.add('q');
  await mesh.link('p', 'q');
  const ch = (await p.treasury.openChannel(q.treasury.nodeId, p.payoutAddress)).channel_id;
  const dep = await mesh.deposit('p', 100_000n);
  await p.treasury.addDeposit(ch, dep);
  await q.treasury.addDeposit(ch, await mesh.deposit('q', 50_000n));
  for (const [from, amount] of [
    [p, 2_000],
    [q, 700],
  ] as const) {
    const [r] = await from.treasury.pay([{ channel_id: ch, amount_sat: amount }]);
    await waitFor(() => from.treasury.channel(ch).total_acked_sat === (r as { position: string }).position);
  }
  await waitFor(
    () =>
      b2.treasury.info().committee!.seq === p.treasury.info().committee!.seq &&
      b1.treasury.channel(ch).total_received_sat === '700',
  );
  return { p, b1, q, ch, dep };
}

const s = await scene();
/** b1's replica, and the primary's state as its next update would carry it (a fresh copy each time). */
const replica = (): TreasuryState => structuredClone(s.b1.treasury.state);
const next = (): ReplicaBody => structuredClone(replicaOf(s.p.treasury.state, s.p.treasury.state.committee!.seq + 1));
const code = (edit: (b: ReplicaBody) => void, r: TreasuryState = replica()): string | null => {
  const b = next();
  edit(b);
  return checkUpdate(r, b)?.code ?? null;
};
const otherAddress = () => payments.p2wpkh({ hash: randomBytes(20), network: NETWORK }).address!;

test("the primary's genuine update passes", () => {
  assert.equal(
    code(() => undefined),
    null,
  );
});

test('roster: size, threshold and members are fixed once formed', () => {
  assert.equal(
    code((b) => {
      b.size = 4;
    }),
    'roster_changed',
  );
  assert.equal(
    code((b) => {
      b.threshold = 3;
    }),
    'roster_changed',
  );
  assert.equal(
    code((b) => {
      b.members = [b.members[0]!, b.members[2]!, b.members[1]!];
    }),
    'roster_changed',
  );
  assert.equal(
    code((b) => {
      b.members[1] = { ...b.members[1]!, address: 'elsewhere:1' };
    }),
    'roster_changed',
  );
  // While forming, the roster may only grow at its tail.
  const forming = replica();
  forming.committee!.members = forming.committee!.members.slice(0, 2);
  assert.equal(
    code(() => undefined, forming),
    null,
  );
  assert.equal(
    code((b) => {
      b.members = [b.members[0]!, b.members[2]!];
    }, forming),
    'roster_changed',
  );
});

test("payout: the committee's address never changes and every channel pays our side to it", () => {
  assert.equal(
    code((b) => {
      b.payoutAddress = otherAddress();
    }),
    'payout_changed',
  );
  assert.equal(
    code((b) => {
      b.channels[s.ch]!.myPayout = bytesToHex(payoutScriptFor(otherAddress()));
    }),
    'payout_changed',
  );
});

test("channels: id, peer, initiator and the peer's payout are immutable; status only moves forward", () => {
  assert.equal(
    code((b) => {
      b.channels[s.ch]!.peerId = s.b1.treasury.nodeId;
    }),
    'channel_changed',
  );
  assert.equal(
    code((b) => {
      b.channels[s.ch]!.initiator = false;
    }),
    'channel_changed',
  );
  assert.equal(
    code((b) => {
      b.channels[s.ch]!.peerPayout = bytesToHex(payoutScriptFor(otherAddress()));
    }),
    'channel_changed',
  );
  assert.equal(
    code((b) => {
      b.channels[s.ch]!.status = 'opening';
    }),
    'status_regressed',
  );
  assert.equal(
    code((b) => {
      delete b.channels[s.ch];
    }),
    'entry_missing',
  );
});

test("a new channel's peer payout needs the peer's signature", () => {
  const key = bytesToHex(randomPrivateKey());
  const peerId = bytesToHex(publicKeyOf(hexToBytes(key)));
  const id = bytesToHex(randomBytes(32));
  const payout = bytesToHex(payoutScriptFor(otherAddress()));
  const add = (sig?: string) => (b: ReplicaBody) => {
    b.channels[id] = {
      ...structuredClone(b.channels[s.ch]!),
      id,
      peerId,
      myDeposits: [],
      peerDeposits: [],
      sent: 0n,
      received: 0n,
      acked: 0n,
      peerPayout: payout,
      ...(sig ? { peerPayoutSig: sig } : {}),
    };
    delete b.channels[id]!.peerPaid;
  };
  assert.equal(code(add()), 'unsigned_peer_payout');
  assert.equal(
    code(add(signPayout(bytesToHex(randomPrivateKey()), id, payout))),
    'unsigned_peer_payout',
    'signed by someone else',
  );
  assert.equal(code(add(signPayout(key, id, payout))), null);
});

test('totals: sent, received, acked never go down; acked ≤ sent; our balance never negative', () => {
  assert.equal(
    code((b) => {
      b.channels[s.ch]!.sent -= 1n;
    }),
    'total_decreased',
  );
  assert.equal(
    code((b) => {
      b.channels[s.ch]!.acked -= 1n;
    }),
    'total_decreased',
  );
  assert.equal(
    code((b) => {
      b.channels[s.ch]!.received -= 1n;
    }),
    'total_decreased',
  );
  assert.equal(
    code((b) => {
      b.channels[s.ch]!.acked = b.channels[s.ch]!.sent + 1n;
    }),
    'acked_exceeds_sent',
  );
  assert.equal(
    code((b) => {
      b.channels[s.ch]!.sent += 5_000n;
    }),
    null,
    'more paid is fine',
  );
  assert.equal(
    code((b) => {
      b.channels[s.ch]!.sent = 100_701n;
    }),
    'balance_negative',
  );
});

test('received rises only to a total the peer signed', () => {
  const qKey = s.q.treasury.state.identityKey;
  assert.equal(
    code((b) => {
      b.channels[s.ch]!.received += 100n;
    }),
    'unsigned_received',
  );
  assert.equal(
    code((b) => {
      b.channels[s.ch]!.received = 800n;
      b.channels[s.ch]!.peerPaid = { total: 800n, sig: signPaid(bytesToHex(randomPrivateKey()), s.ch, 800n) };
    }),
    'unsigned_received',
  );
  assert.equal(
    code((b) => {
      b.channels[s.ch]!.received = 800n;
      b.channels[s.ch]!.peerPaid = { total: 800n, sig: signPaid(qKey, s.ch, 700n) };
    }),
    'unsigned_received',
    'a signature of another total',
  );
  assert.equal(
    code((b) => {
      b.channels[s.ch]!.received = 800n;
      b.channels[s.ch]!.peerPaid = { total: 800n, sig: signPaid(qKey, s.ch, 800n) };
    }),
    null,
  );
});

test('a closure at lower totals passes only at a settlement a later member reported signing', () => {
  const close = (b: ReplicaBody) => {
    const c = b.channels[s.ch]!;
    c.status = 'closed';
    c.sent = 1_000n;
    c.acked = 1_000n;
    c.settlement = { txid: 'ab'.repeat(32), by: 'local', feeRate: 2 };
  };
  assert.equal(code(close), 'total_decreased');
  const r = replica();
  r.committee!.reported = { [s.ch]: { txid: 'ab'.repeat(32), sent: 1_000n, received: 700n } };
  assert.equal(code(close, r), null);
  r.committee!.reported[s.ch]!.sent = 900n;
  assert.equal(code(close, r), 'total_decreased');
});

test('deposits: script, keys and funding are immutable; status follows the deposit state machine', () => {
  assert.equal(
    code((b) => {
      b.deposits[s.dep]!.value = 1n;
    }),
    'deposit_changed',
  );
  assert.equal(
    code((b) => {
      b.deposits[s.dep]!.outpoint = `${'cd'.repeat(32)}:0`;
    }),
    'deposit_changed',
  );
  assert.equal(
    code((b) => {
      b.deposits[s.dep]!.pubkeys = [...b.deposits[s.dep]!.pubkeys].reverse();
    }),
    'deposit_changed',
  );
  assert.equal(
    code((b) => {
      b.deposits[s.dep]!.m = 1;
    }),
    'deposit_changed',
  );
  assert.equal(
    code((b) => {
      b.deposits[s.dep]!.status = 'pending';
    }),
    'status_regressed',
  );
  assert.equal(
    code((b) => {
      delete b.deposits[s.dep];
    }),
    'entry_missing',
  );
  assert.equal(
    code((b) => {
      b.nextDeposit -= 1;
    }),
    'deposit_changed',
  );
  const free = replica();
  free.deposits[s.dep]!.status = 'free';
  assert.equal(
    code((b) => {
      b.deposits[s.dep]!.status = 'pending';
    }, free),
    'status_regressed',
  );
});

test('a new deposit must list the key this member made for it, in an m-of-n script over its keys', () => {
  const r = replica();
  const mine = bytesToHex(randomPrivateKey());
  r.committee!.memberKeys.depX = mine;
  const keys = (own: boolean) => [
    bytesToHex(publicKeyOf(randomPrivateKey())),
    bytesToHex(publicKeyOf(randomPrivateKey())),
    own ? bytesToHex(publicKeyOf(hexToBytes(mine))) : bytesToHex(publicKeyOf(randomPrivateKey())),
  ];
  const add = (pubkeys: string[], script?: string) => (b: ReplicaBody) => {
    const built = buildDepositScript(2, pubkeys);
    b.deposits.depX = {
      id: 'depX',
      m: 2,
      pubkeys,
      privkeys: [],
      witnessScript: script ?? built.witnessScript,
      address: built.address,
      status: 'pending',
    };
  };
  assert.equal(code(add(keys(false)), r), 'deposit_key_missing');
  assert.equal(code(add(keys(true)), r), null);
  assert.equal(code(add(keys(true), buildDepositScript(1, keys(true)).witnessScript), r), 'deposit_changed');
});
