/**
 * Two Treasury cores wired to each other in one process, with test doubles for every port: a fake chain
 * (a map of real, signed-looking Bitcoin transactions the test builds), an in-memory sealed store that
 * keeps every sealed state, and a wire the test can watch, hold, replay or corrupt.
 * For protocol-logic tests; the end-to-end tests use real processes, sockets and the regtest chain.
 */
import { Transaction, payments } from 'bitcoinjs-lib';
import { randomBytes } from 'node:crypto';
import { AttestationService } from '../../enclave-sim/attestation.ts';
import type { TreasuryEvent, TxOutInfo } from '../../src/enclave/treasury/ports.ts';
import { Treasury } from '../../src/enclave/treasury/treasury.ts';
import { decodeState, type TreasuryState } from '../../src/enclave/treasury/state.ts';
import { NETWORK } from '../../src/enclave/treasury/transactions.ts';

export const MEASUREMENT = 'ab'.repeat(32);

export class FakeChain {
  readonly txs = new Map<string, { hex: string; confirmations: number; spent: Set<number> }>();

  /** A transaction paying `value` to `address`, from a made-up input; returns its outpoint. */
  fund(address: string, value: bigint, confirmations = 6): { txid: string; vout: number } {
    const tx = new Transaction();
    tx.addInput(randomBytes(32), 0);
    tx.addOutput(payments.p2wpkh({ hash: randomBytes(20), network: NETWORK }).output!, 1000n);
    tx.addOutput(paymentScript(address), value);
    this.txs.set(tx.getId(), { hex: tx.toHex(), confirmations, spent: new Set() });
    return { txid: tx.getId(), vout: 1 };
  }

  /**
   * Puts a transaction on chain with `confirmations` (again: updates them): its outputs can be looked up,
   * and the outputs it spends are reported spent from then on.
   */
  spend(txHex: string, confirmations = 6): string {
    const tx = Transaction.fromHex(txHex);
    for (const i of tx.ins) this.txs.get(Buffer.from(i.hash).reverse().toString('hex'))?.spent.add(i.index);
    const known = this.txs.get(tx.getId());
    if (known) known.confirmations = confirmations;
    else this.txs.set(tx.getId(), { hex: txHex, confirmations, spent: new Set() });
    return tx.getId();
  }

  /**
   * A transaction a host broadcast: in the mempool (0 confirmations) until `spend` mines it. What it spends
   * is reported spent from now on, so an enclave asking the chain about those outputs sees them spent.
   */
  broadcast(txHex: string): string {
    return this.spend(txHex, 0);
  }

  /** Whether the chain (mempool included) shows `txid:vout` spent. */
  isSpent(txid: string, vout: number): boolean {
    return this.txs.get(txid)?.spent.has(vout) ?? false;
  }

  lookup(txid: string, vout: number): TxOutInfo | null {
    const t = this.txs.get(txid);
    if (!t) return null;
    return { txHex: t.hex, confirmations: t.confirmations, unspent: !t.spent.has(vout) };
  }
}

function paymentScript(address: string): Uint8Array {
  return payments.p2wsh({ address, network: NETWORK }).output!;
}

export interface Side {
  name: string;
  treasury: Treasury;
  events: TreasuryEvent[];
  sealed: Uint8Array[];
  /** For each sealed state: whether the seal asked for rollback protection (the platform counter). */
  protects: boolean[];
  conn: string;
  state(): TreasuryState;
}

export interface Wire {
  /** Every frame sent so far, per direction, in order. */
  log: { ab: Uint8Array[]; ba: Uint8Array[] };
  /** When set, frames are passed through this instead of being delivered as they are. */
  tamper?: (dir: 'ab' | 'ba', frames: Uint8Array[]) => Uint8Array[];
}

/**
 * replyTimeoutMs: how long a side waits for the peer's answer (default 2 s; success paths on a loaded
 * machine want >= 10 s). beforeSeal: awaited at the start of every seal of that side (a test holds a seal
 * in flight with it).
 */
export async function makePair(
  opts: {
    sealDelayMs?: number;
    minConfirmations?: number;
    replyTimeoutMs?: number;
    beforeSeal?: (side: 'a' | 'b', protect: boolean) => Promise<void> | void;
  } = {},
) {
  const service = AttestationService.create();
  const chain = new FakeChain();
  const wire: Wire = { log: { ab: [], ba: [] } };
  const sides: Record<'a' | 'b', Side> = {} as never;
  const deliverTo: Record<'a' | 'b', (frames: Uint8Array[]) => void> = {} as never;

  for (const name of ['a', 'b'] as const) {
    const config = {
      trustAnchor: service.trustAnchor,
      allowedMeasurements: [MEASUREMENT],
      minConfirmations: opts.minConfirmations ?? 1,
      payoutAddress: payments.p2wpkh({ hash: randomBytes(20), network: NETWORK }).address!,
    };
    const state = Treasury.create(config);
    const side: Side = {
      name,
      treasury: undefined as never,
      events: [],
      sealed: [],
      protects: [],
      conn: `${name}-conn`,
      state: () => decodeState(side.sealed[side.sealed.length - 1]!),
    };
    const dir = name === 'a' ? 'ab' : 'ba';
    side.treasury = new Treasury(state, {
      seal: async (bytes, protect) => {
        if (opts.beforeSeal) await opts.beforeSeal(name, protect);
        if (opts.sealDelayMs) await new Promise((r) => setTimeout(r, opts.sealDelayMs));
        side.sealed.push(bytes);
        side.protects.push(protect);
      },
      send: (_conn, frames) => {
        wire.log[dir].push(...frames);
        const out = wire.tamper ? wire.tamper(dir, frames) : frames;
        // Deliver asynchronously, as a socket would.
        if (out.length) setImmediate(() => deliverTo[name === 'a' ? 'b' : 'a'](out));
      },
      close: () => undefined,
      emit: (e) => side.events.push(e),
      getTxOut: async (txid, vout) => chain.lookup(txid, vout),
      quote: async (reportData, nonce) =>
        service.issueQuote({ measurement: MEASUREMENT, reportData, nonce, debug: false, platformId: '00'.repeat(16) }),
      random: (n) => new Uint8Array(randomBytes(n)),
      replyTimeoutMs: opts.replyTimeoutMs ?? 2_000,
    });
    sides[name] = side;
  }
  deliverTo.a = (frames) => void sides.a.treasury.receive(sides.a.conn, frames);
  deliverTo.b = (frames) => void sides.b.treasury.receive(sides.b.conn, frames);
  await sides.a.treasury.commit();
  await sides.b.treasury.commit();
  return { service, chain, wire, a: sides.a, b: sides.b };
}

/** Connects a → b and waits for both sides to report the session. */
export async function connect(pair: Awaited<ReturnType<typeof makePair>>): Promise<void> {
  pair.b.treasury.accept(pair.b.conn);
  await pair.a.treasury.connect(pair.a.conn);
  await waitFor(() => pair.a.treasury.info().peers.length === 1 && pair.b.treasury.info().peers.length === 1);
}

/** A funded, confirmed deposit of `value` on `side`. */
export async function fundedDeposit(
  pair: Awaited<ReturnType<typeof makePair>>,
  side: Side,
  value: bigint,
): Promise<string> {
  const dep = await side.treasury.newDeposit();
  const out = pair.chain.fund(dep.address, value);
  await side.treasury.depositFunded(dep.deposit_id, out.txid, out.vout);
  return dep.deposit_id;
}

/**
 * A connected pair with one channel that a opened: a's deposit of `aValue` and b's of `bValue` in it.
 * `pair` takes makePair's options (slow seals, reply timeouts, a seal hook).
 */
export async function openFundedPair(
  opts: { aValue?: bigint; bValue?: bigint; pair?: Parameters<typeof makePair>[0] } = {},
) {
  const pair = await makePair(opts.pair);
  await connect(pair);
  const da = await fundedDeposit(pair, pair.a, opts.aValue ?? 1_000_000n);
  const db = await fundedDeposit(pair, pair.b, opts.bValue ?? 500_000n);
  const ch = await pair.a.treasury.openChannel(pair.b.treasury.nodeId, pair.a.state().config.payoutAddress);
  await pair.a.treasury.addDeposit(ch.channel_id, da);
  await waitFor(() => pair.b.treasury.channels().length === 1, 30_000);
  await pair.b.treasury.addDeposit(ch.channel_id, db);
  return { pair, channelId: ch.channel_id, da, db };
}

export async function waitFor(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
