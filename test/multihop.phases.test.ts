// run-tests lane: in-process
/**
 * The multi-hop transition table (src/enclave/treasury/multihop/phases.ts), tested from the table itself:
 * - its rows never overlap, and every phase a row names as next is a phase;
 * - every row is run through the real handlers and ends in one of the phases it names, doing what its
 *   action says (the messages it sends); rows whose action checks τ's signatures run on a line of real
 *   treasuries, the others on one MultiHop with a fake host and records made up for the case;
 * - every message or event with no row for its case is ignored: the record, the channels and the outbox
 *   stay exactly as they were, and nothing is sealed.
 * A round of many payments is one record at every hop: it goes through the same rows as a lone payment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MultiHop, type MultiHopHost } from '../src/enclave/treasury/multihop.ts';
import {
  TRANSITIONS,
  transitionFor,
  type MhCase,
  type MhEvent,
  type MhPhaseOrNone,
  type MhTransition,
} from '../src/enclave/treasury/multihop/phases.ts';
import type { MhHop, MhPayment, MhPhase, MhRole } from '../src/enclave/treasury/multihop/records.ts';
import type { ChannelMessage, MultiHopMessage } from '../src/enclave/protocol/messages.ts';
import type { Channel, TreasuryState } from '../src/enclave/treasury/state.ts';
import { line } from './helpers/treasury-mesh.ts';
import { waitFor } from './helpers/treasury-pair.ts';
import { decodeState } from '../src/enclave/treasury/state.ts';
import { ROUND_SIZES, payInRound } from './helpers/multihop-views.ts';

const PHASES: MhPhase[] = ['locked', 'signed', 'committed', 'released', 'done', 'aborted'];
const ROLES: MhRole[] = ['payer', 'intermediary', 'destination'];
const ROUTE = ['P', 'I', 'D'];
const INDEX: Record<MhRole, number> = { payer: 0, intermediary: 1, destination: 2 };
const PID = 'p1';

/** The rows run so far (the last test checks that every row was). */
const exercised = new Set<MhTransition>();

function hop(i: number): MhHop {
  return {
    ch: `ch${i}`,
    from: ROUTE[i]!,
    to: ROUTE[i + 1]!,
    amount: 10n,
    fromOld: 1_000n,
    toOld: 1_000n,
    fromPayout: `pay-${ROUTE[i]}`,
    toPayout: `pay-${ROUTE[i + 1]}`,
    inputs: [],
  };
}

/** Timers of the made-up records fire only when a test waits (the timeout rows); what they do afterwards is moot. */

/** A record of `phase` for `role`, with what that phase has (τ made up: no row run here checks it). */
function record(phase: MhPhase, role: MhRole, frozen: boolean, quiet: boolean): MhPayment {
  const index = INDEX[role];
  const base = { pid: PID, route: ROUTE, index, amounts: [10n, 10n], feeRate: 1 };
  const hops = [hop(0), hop(1)];
  switch (phase) {
    case 'locked':
      return { ...base, phase, hops: hops.slice(0, index + 1) };
    case 'signed':
      return { ...base, phase, hops, tx: 'tau-hex', txid: 'tau' };
    case 'committed':
      return { ...base, phase, hops, tx: 'tau-hex', txid: 'tau', tauOut: frozen };
    case 'released':
      return { ...base, phase, hops, txid: 'tau', tauOut: frozen };
    case 'done':
      return { ...base, phase, txid: 'tau', resolvedAt: 1, quiet };
    case 'aborted':
      return { ...base, phase, code: 'timeout', txid: null, resolvedAt: 1 };
  }
}

function channel(id: string, peerId: string, lockedBy?: string): Channel {
  return {
    id,
    peerId,
    status: 'open',
    initiator: true,
    myPayout: 'mine',
    peerPayout: 'theirs',
    myDeposits: [],
    removing: [],
    adding: [],
    peerDeposits: [],
    sent: 0n,
    received: 0n,
    acked: 0n,
    ...(lockedBy ? { lockedBy } : {}),
  };
}

interface World {
  mh: MultiHop;
  state: TreasuryState;
  sent: Array<{ to: string; msg: MultiHopMessage | ChannelMessage }>;
  seals: number;
  closed: string[];
  /** Our channel to the neighbour on that side (created for every role, so a stranger case has one too). */
  toward: (peer: string) => Channel;
}

/** One treasury at `role` on P → I → D holding `rec` (or only a stale lock when rec is null). */
function world(role: MhRole, rec: MhPayment | null, timeoutMs = 5): World {
  const index = INDEX[role];
  const holding = rec !== null && rec.phase !== 'done' && rec.phase !== 'aborted';
  const lock = rec === null ? 'gone' : holding ? PID : undefined;
  const channels: Record<string, Channel> = {};
  if (index > 0) channels['ch' + (index - 1)] = channel(`ch${index - 1}`, ROUTE[index - 1]!, lock);
  if (index < 2) channels['ch' + index] = channel(`ch${index}`, ROUTE[index + 1]!, lock);
  const state = {
    version: 1,
    identityKey: '00',
    config: { trustAnchor: '', allowedMeasurements: [], minConfirmations: 1, payoutAddress: '' },
    nextDeposit: 0,
    deposits: {},
    channels,
    multihop: rec ? { [PID]: rec } : {},
  } as TreasuryState;
  const w: Omit<World, 'mh'> = {
    state,
    sent: [],
    seals: 0,
    closed: [],
    toward: (peer) => Object.values(channels).find((c) => c.peerId === peer) ?? channel('none', peer),
  };
  const host: MultiHopHost = {
    state,
    nodeId: ROUTE[index]!,
    identityKey: () => '00',
    isCommittee: () => false,
    takesPart: () => true,
    identityOf: (session) => session,
    connected: () => true,
    peers: () => ROUTE.filter((_, i) => i !== index),
    speakerProof: () => undefined,
    queue: (to, msg) => w.sent.push({ to, msg }),
    sendAhead: (to, msg) => w.sent.push({ to, msg }),
    sendNow: () => undefined,
    commit: () => {
      w.seals++;
      return Promise.resolve();
    },
    event: () => undefined,
    notify: () => undefined,
    closeChannel: (ch) => {
      ch.status = 'closed';
      w.closed.push(ch.id);
    },
    random: (n) => new Uint8Array(n),
    getTxOut: () => Promise.resolve({ txHex: '', confirmations: 1, unspent: true }),
    timeoutMs,
  };
  return { ...w, mh: new MultiHop(host) };
}

const peerOn = (role: MhRole, from: MhCase['from']): string =>
  from === 'upstream' ? ROUTE[INDEX[role] - 1]! : from === 'downstream' ? ROUTE[INDEX[role] + 1]! : 'S';

/** Delivers `on` to the world's record (from `from`); the settlement events take their kind from `on`. */
async function deliver(w: World, role: MhRole, on: MhEvent, from: MhCase['from']): Promise<void> {
  const peer = peerOn(role, from);
  const anyChannel = Object.values(w.state.channels)[0]!;
  const rec = w.state.multihop![PID];
  switch (on) {
    case 'mh_lock':
      return w.mh.handle(peer, {
        t: 'mh_lock',
        pid: PID,
        ch: 'x',
        route: ROUTE,
        amounts: ['10', '10'],
        hops: [],
        fee_rate: 1,
      });
    case 'mh_signed':
      return w.mh.handle(peer, { t: 'mh_signed', pid: PID, hops: [], tx: 'x' });
    case 'mh_commit':
      return w.mh.handle(peer, { t: 'mh_commit', pid: PID, tx: 'x' });
    case 'mh_release':
      return w.mh.handle(peer, { t: 'mh_release', pid: PID });
    case 'mh_unlock':
      return w.mh.handle(peer, { t: 'mh_unlock', pid: PID });
    case 'mh_abort':
      return w.mh.handle(peer, { t: 'mh_abort', pid: PID, code: 'peer_refused' });
    case 'paid':
      return w.mh.peerPaidOnLocked(w.toward(peer));
    case 'reconnected':
      return w.mh.resync(peer);
    case 'closed':
      return w.mh.closedLocally(anyChannel);
    case 'settle':
      await w.mh.localSettle(anyChannel);
      return;
    case 'timeout':
      await new Promise((r) => setTimeout(r, 30));
      return;
    default: {
      const txid = on === 'settled_tau' && rec && 'txid' in rec && rec.txid ? rec.txid : 'other';
      const isNew = on === 'settled_new';
      return w.mh.settledElsewhere(anyChannel, txid, () => isNew, on === 'settled_old_on_chain');
    }
  }
}

/** Every case the handlers can meet, for a record of each phase held by each role. */
function* cases(): Generator<MhCase> {
  const events: MhEvent[] = [
    'mh_lock',
    'mh_signed',
    'mh_commit',
    'mh_release',
    'mh_unlock',
    'mh_abort',
    'paid',
    'timeout',
    'settle',
    'settled',
    'settled_tau',
    'settled_new',
    'settled_old',
    'settled_old_on_chain',
    'closed',
    'reconnected',
  ];
  const local: MhEvent[] = ['timeout', 'settle', 'settled', 'settled_tau', 'settled_new', 'settled_old'];
  local.push('settled_old_on_chain', 'closed');
  for (const phase of ['none', ...PHASES] as MhPhaseOrNone[])
    for (const on of events)
      for (const role of ROLES)
        for (const from of local.includes(on) ? (['self'] as const) : (['upstream', 'downstream', null] as const)) {
          if ((from === 'upstream' && role === 'payer') || (from === 'downstream' && role === 'destination')) continue;
          for (const frozen of phase === 'committed' || phase === 'released' ? [false, true] : [false])
            for (const quiet of phase === 'done' ? [false, true] : [false])
              yield { phase, on, role, from, frozen, quiet };
        }
}

test('the table: no two rows claim the same case, every row has a case, and next phases are phases', () => {
  const matched = new Set<MhTransition>();
  for (const c of cases()) {
    const rows = TRANSITIONS.filter((r) => transitionFor(c) === r);
    const all = TRANSITIONS.filter(
      (r) =>
        r.phase.includes(c.phase) &&
        r.on.includes(c.on) &&
        r.roles.includes(c.role) &&
        (r.frozen === undefined || r.frozen === c.frozen) &&
        (r.quiet === undefined || r.quiet === c.quiet) &&
        (r.from === c.from ||
          (r.from === 'either' && (c.from === 'upstream' || c.from === 'downstream')) ||
          (r.from === 'anyone' && c.from !== 'self')),
    );
    assert.ok(all.length <= 1, `${JSON.stringify(c)} matches ${all.length} rows`);
    for (const r of rows) matched.add(r);
  }
  for (const r of TRANSITIONS) {
    assert.ok(matched.has(r), `row ${JSON.stringify(r)} is reachable`);
    for (const p of r.next) assert.ok(p === 'none' || PHASES.includes(p), `${p} is a phase`);
  }
});

/** Rows whose action checks τ (its txid, its signatures) or a LOCK against real channels: run on real treasuries below. */
const REAL: ReadonlySet<string> = new Set([
  'lock_and_forward',
  'sign_and_return',
  'countersign',
  'complete_and_commit',
  'commit',
]);

/** What an action sends, to whom (by side), when it runs for `c`. */
function expectedSends(row: MhTransition, c: MhCase): Array<{ t: string; to: string }> {
  const up = ROUTE[INDEX[c.role] - 1];
  const down = ROUTE[INDEX[c.role] + 1];
  const sender = peerOn(c.role, c.from);
  const to = (t: string, peer: string | undefined) => (peer ? [{ t, to: peer }] : []);
  switch (row.action) {
    case 'abort':
      return [...to('mh_abort', up), ...to('mh_abort', down)].filter((m) => m.to !== sender || c.from === 'self');
    case 'resend_abort':
    case 'abort_forgotten':
      return to('mh_abort', sender);
    case 'release':
      return c.frozen ? [] : c.role === 'payer' ? to('mh_unlock', down) : to('mh_release', up);
    case 'unlock':
      return to('mh_unlock', down);
    case 'release_and_close':
      return c.frozen ? [] : c.role === 'payer' ? to('mh_unlock', down) : to('mh_release', up);
    case 'resend_lock':
      return to('mh_lock', down);
    case 'resend_signed':
    case 'resend_release':
      return to(row.action === 'resend_signed' ? 'mh_signed' : 'mh_release', up);
    case 'resend_commit':
    case 'resend_unlock':
      return to(row.action === 'resend_commit' ? 'mh_commit' : 'mh_unlock', down);
    default:
      return [];
  }
}

test('every row not checking τ: run from a made-up record, it ends in a phase the row names and sends what it says', async () => {
  for (const c of cases()) {
    const row = transitionFor(c);
    if (!row || REAL.has(row.action)) continue;
    // The payer's τ pays the fee, which takes a real τ to compute: the intermediary runs the same row here.
    if (row.action === 'hand_out_tau' && c.role === 'payer') continue;
    const rec = c.phase === 'none' ? null : record(c.phase, c.role, c.frozen, c.quiet);
    const w = world(c.role, rec);
    const label = `${row.action} for ${JSON.stringify(c)}`;
    await deliver(w, c.role, c.on, c.from);
    const after = w.state.multihop![PID];
    assert.ok(row.next.includes(after?.phase ?? 'none'), `${label}: ended ${after?.phase ?? 'none'}`);
    const sends = w.sent.map((s) => ({ t: s.msg.t, to: s.to }));
    assert.deepEqual(sends, expectedSends(row, c), `${label}: sent`);
    if (after && (after.phase === 'done' || after.phase === 'aborted'))
      assert.ok(
        Object.values(w.state.channels).every((ch) => ch.lockedBy !== PID),
        `${label}: resolved, nothing locked`,
      );
    if (row.action === 'drop_lock')
      assert.equal(Object.values(w.state.channels)[0]!.lockedBy, undefined, `${label}: the stale lock is dropped`);
    if (row.action === 'hand_out_tau') assert.ok(after?.phase === 'committed' && after.tauOut, `${label}: frozen`);
    if (row.action === 'resolve_by_tau') assert.equal(w.closed.length, Object.keys(w.state.channels).length);
    exercised.add(row);
  }
});

test('every case with no row is ignored: record, channels and outbox unchanged, nothing sealed', async () => {
  let ignored = 0;
  for (const c of cases()) {
    // Our own settlements and timeouts have a row in every phase they can meet (see the first test);
    // a settlement's kind is read from the record's phase, so only those cases can occur.
    if (transitionFor(c) || c.phase === 'none' || c.from === 'self') continue;
    const rec = record(c.phase as MhPhase, c.role, c.frozen, c.quiet);
    const w = world(c.role, rec);
    const before = structuredClone({ rec: w.state.multihop, channels: w.state.channels });
    await deliver(w, c.role, c.on, c.from);
    const label = JSON.stringify(c);
    assert.deepEqual({ rec: w.state.multihop, channels: w.state.channels }, before, `${label}: unchanged`);
    assert.deepEqual(w.sent, [], `${label}: nothing sent`);
    assert.equal(w.seals, 0, `${label}: nothing sealed`);
    ignored++;
  }
  assert.ok(ignored > 100, `${ignored} ignored cases`);
});

for (const size of ROUND_SIZES)
  test(`the rows that check τ, on a line of real treasuries, for a round of ${size}: each hop goes through exactly the phases its rows name`, async () => {
    const { mesh, nodes } = await line(3);
    const seen: Record<string, MhPhase[]> = { n0: [], n1: [], n2: [] };
    mesh.onSeal = (name, bytes) => {
      const r = Object.values(decodeState(bytes).multihop ?? {})[0];
      const list = seen[name]!;
      if (r && list[list.length - 1] !== r.phase) list.push(r.phase);
    };
    await payInRound(nodes[0]!, nodes[2]!.treasury.nodeId, 1_000, size);
    await waitFor(() => nodes.every((n) => Object.values(n.treasury.state.multihop!).every((r) => r.phase === 'done')));
    mesh.onSeal = undefined;
    assert.deepEqual(seen, {
      n0: ['locked', 'committed', 'done'],
      n1: ['locked', 'signed', 'committed', 'released', 'done'],
      n2: ['signed', 'released', 'done'],
    });
    const at = (phase: MhPhaseOrNone, on: MhEvent, role: MhRole, from: MhCase['from']) => {
      const row = transitionFor({ phase, on, role, from, frozen: false, quiet: false });
      assert.ok(row && REAL.has(row.action), `${phase} ${on} ${role}`);
      return row;
    };
    // Each step seen above, and the row that made it.
    const steps: Array<[MhTransition, MhPhase]> = [
      [at('none', 'mh_lock', 'intermediary', 'upstream'), 'locked'],
      [at('none', 'mh_lock', 'destination', 'upstream'), 'signed'],
      [at('locked', 'mh_signed', 'intermediary', 'downstream'), 'signed'],
      [at('locked', 'mh_signed', 'payer', 'downstream'), 'committed'],
      [at('signed', 'mh_commit', 'intermediary', 'upstream'), 'committed'],
      [at('signed', 'mh_commit', 'destination', 'upstream'), 'released'],
    ];
    for (const [row, phase] of steps) {
      assert.ok(row.next.includes(phase));
      exercised.add(row);
    }
  });

test('every row of the table was run', () => {
  for (const r of TRANSITIONS) assert.ok(exercised.has(r), `row not run: ${JSON.stringify(r)}`);
});
