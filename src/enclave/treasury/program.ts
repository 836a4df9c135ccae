/**
 * The treasury enclave program: the entry enclave-sim bundles, measures and runs in its sandbox.
 * It only wires the interface's ecalls to the Treasury and the Treasury's ports to ocalls.
 */
import { serveEnclave, EnclaveError, type EnclaveContext } from '../../../enclave-sim/runtime.ts';
import { TreasuryError } from './errors.ts';
import { TreasuryInterface } from './interface.ts';
import { decodeState } from './state.ts';
import { hexToBytes } from '../../../enclave-sim/encoding.ts';
import type { TreasuryPorts } from './ports.ts';
import { Treasury } from './treasury.ts';

type Ctx = EnclaveContext<typeof TreasuryInterface>;
let treasury: Treasury | undefined;

/** Failures of each one-way ocall so far (see `notify`). */
const ocallFailures = new Map<string, number>();

/**
 * A one-way ocall (frames, a close, an event) is a notification: the treasury never waits for it, and its
 * failure must not stop the enclave. It can fail only here, before it leaves (arguments its schema refuses,
 * or that cannot be cloned: a bug in this program, not the host's doing), so each failure is counted and
 * reported to the host as an `ocall_failed` event, which the host logs. If that report fails too, the
 * failure stays counted: there is no other way out of the enclave.
 */
function notify(ctx: Ctx, name: 'net_send' | 'net_close' | 'event', sent: Promise<unknown>): void {
  sent.catch((err: unknown) => {
    const failures = (ocallFailures.get(name) ?? 0) + 1;
    ocallFailures.set(name, failures);
    const message = err instanceof Error ? err.message : String(err);
    ctx.ocall('event', { event: { type: 'ocall_failed', ocall: name, failures, message } }).catch(() => {
      ocallFailures.set('event', (ocallFailures.get('event') ?? 0) + 1);
    });
  });
}

function ports(ctx: Ctx, promotionTimeoutMs?: number): TreasuryPorts {
  return {
    ...(promotionTimeoutMs !== undefined ? { promotionTimeoutMs } : {}),
    seal: (bytes, protect) => ctx.sealState(bytes, { protect }),
    send: (conn, frames) => notify(ctx, 'net_send', ctx.ocall('net_send', { conn, frames })),
    close: (conn, reason) => notify(ctx, 'net_close', ctx.ocall('net_close', { conn, reason })),
    emit: (event) => notify(ctx, 'event', ctx.ocall('event', { event })),
    getTxOut: async (txid, vout) => {
      const r = await ctx.ocall('chain_get_txout', { txid, vout });
      return r ? { txHex: r.tx_hex, confirmations: r.confirmations, unspent: r.unspent } : null;
    },
    quote: (reportData, nonce) => ctx.getQuote(reportData, nonce),
    random: (n) => ctx.randomBytes(n),
  };
}

function live(): Treasury {
  if (!treasury) throw new EnclaveError('not_initialized', 'call init first');
  return treasury;
}

/** The treasury's errors become enclave errors with the same stable code; anything else is internal. */
function asEnclaveError(err: unknown): unknown {
  return err instanceof TreasuryError ? new EnclaveError(err.code, err.message) : err;
}

/** Runs a treasury operation on the initialised treasury. */
async function run<T>(fn: (t: Treasury) => Promise<T> | T): Promise<T> {
  try {
    return await fn(live());
  } catch (err) {
    throw asEnclaveError(err);
  }
}

serveEnclave(TreasuryInterface, {
  init: async (args, ctx) => {
    if (treasury) return { node_id: treasury.nodeId, restored: true };
    const sealed = await ctx.unsealState();
    const restored = sealed !== null;
    let state;
    const joinTokens: string[] = [];
    try {
      state = sealed
        ? decodeState(sealed)
        : Treasury.create(
            {
              trustAnchor: args.trust_anchor,
              allowedMeasurements: args.allowed_measurements,
              minConfirmations: args.min_confirmations,
              payoutAddress: args.payout_address,
            },
            args.committee,
            joinTokens,
          );
    } catch (err) {
      throw asEnclaveError(err);
    }
    const t = new Treasury(state, ports(ctx, args.promotion_timeout_ms));
    if (!restored) {
      try {
        t.setPayoutAddress(args.payout_address);
      } catch (err) {
        throw asEnclaveError(err);
      }
      await t.commit();
    }
    if (args.rest_url !== undefined) {
      try {
        await t.advertiseRestUrl(args.rest_url);
      } catch (err) {
        throw asEnclaveError(err);
      }
    }
    treasury = t;
    // Only after the seal holds their hashes: a token given out is always one the primary will honour.
    return { node_id: t.nodeId, restored, ...(joinTokens.length > 0 ? { join_tokens: joinTokens } : {}) };
  },
  get_info: () => run((t) => t.info()),
  committee_join: (a) =>
    run((t) => {
      t.joinCommittee(a.primary_id, a.address, a.token, a.rest_url);
      return null;
    }),
  attest: (a) => run(async (t) => ({ node_id: t.nodeId, quote: await t.attest(hexToBytes(a.nonce)) })),
  deposit_new: () => run((t) => t.newDeposit()),
  deposit_funded: (a) => run((t) => t.depositFunded(a.deposit_id, a.txid, a.vout)),
  deposit_release: (a) => run((t) => t.releaseDeposit(a.deposit_id, a.address, a.fee_rate)),
  list_deposits: () => run((t) => ({ deposits: t.deposits() })),
  list_channels: () => run((t) => ({ channels: t.channels() })),
  get_channel: (a) => run((t) => t.channel(a.channel_id)),
  channel_open: (a) => run((t) => t.openChannel(a.peer_id, a.payout_address)),
  channel_add_deposit: (a) => run((t) => t.addDeposit(a.channel_id, a.deposit_id)),
  channel_remove_deposit: (a) => run((t) => t.removeDeposit(a.channel_id, a.deposit_id)),
  channel_spent: (a) => run((t) => t.spentOnChain(a.channel_id, a.tx_hex)),
  channel_settle: (a) => run((t) => t.settle(a.channel_id, a.fee_rate)),
  pay: (a) => run(async (t) => ({ results: await t.pay(a.payments, a.journaled) })),
  pay_refs: (a) => run((t) => ({ refs: t.payRefs(a.drop) })),
  mh_pay: (a) => run((t) => t.payMultihop(a.dest, a.amount_sat, a.fee_rate, a.max_fee_sat)),
  mh_pay_round: (a) => run((t) => t.payMultihopRound(a.dest, a.payments, a.fee_rate, a.journaled)),
  mh_refs: (a) => run((t) => ({ refs: t.multihopRefs(a.drop) })),
  mh_gossip: (a) =>
    run((t) => {
      t.multihop.gossip(a.peer_id);
      return null;
    }),
  mh_view: () => run((t) => ({ nodes: t.multihop.graphView(), payments: t.multihop.view() })),
  set_fees: (a) => run((t) => t.setFees(a.base_sat, a.ppm)),
  committee_remove: (a) => run((t) => t.removeMember(a.node_id)),
  committee_add: (a) => run((t) => t.addMember(a.node_id, a.address)),
  peer_connect: (a) =>
    run(async (t) => {
      await t.connect(a.conn);
      return null;
    }),
  peer_accept: (a) =>
    run((t) => {
      t.accept(a.conn);
      return null;
    }),
  peer_recv: (a) =>
    run(async (t) => {
      await t.receive(a.conn, a.frames);
      return null;
    }),
  peer_disconnected: (a) =>
    run((t) => {
      t.disconnected(a.conn);
      return null;
    }),
});
