/**
 * Two Channels wired to each other in one process, every message going through the wire encoding, no
 * disk and no network: for tests, and to measure the protocol's CPU cost alone (scripts/lnmodel-quick.ts).
 */
import { Channel, configFromOpen, DEFAULT_CHANNEL_PARAMS, FUNDING_TX_HASH, type TurnEvents } from './channel.ts';
import { basepointsOf, generateChannelSecrets } from './keys.ts';
import { CommitmentSecrets } from './revocation.ts';
import {
  decodeMessage,
  encodeMessage,
  type AcceptChannel,
  type LnMessage,
  type LnMode,
  type OpenChannel,
} from './wire.ts';

export interface InMemoryPair {
  payer: Channel;
  payee: Channel;
  /** Delivers `msgs` to `to` as one turn (the payee then fulfills what it can); returns its replies. */
  deliver(to: Channel, msgs: LnMessage[], finalised?: number[]): LnMessage[];
  /**
   * Proposes `amounts` and runs rounds until both sides are quiet; `tamper` may alter any message in
   * flight. Returns the proposed ids and the ids the payer saw finalised. @throws ProtocolError
   */
  pay(amounts: bigint[], tamper?: (m: LnMessage) => LnMessage): { ids: number[]; finalised: number[] };
}

export function openInMemoryPair(mode: LnMode, capacitySat = 10_000_000n): InMemoryPair {
  const sa = generateChannelSecrets();
  const sb = generateChannelSecrets();
  const pa = new CommitmentSecrets(sa.commitmentSeed);
  const pb = new CommitmentSecrets(sb.commitmentSeed);
  const open: OpenChannel = {
    type: 'open_channel',
    mode,
    capacitySat,
    fundingTxHash: FUNDING_TX_HASH,
    fundingVout: 0,
    toSelfDelay: DEFAULT_CHANNEL_PARAMS.toSelfDelay,
    dustLimitSat: DEFAULT_CHANNEL_PARAMS.dustLimitSat,
    feeratePerKw: DEFAULT_CHANNEL_PARAMS.feeratePerKw,
    reserveSat: capacitySat / 100n,
    basepoints: basepointsOf(sa),
    firstPoints: [pa.point(0), pa.point(1)],
  };
  const accept: AcceptChannel = {
    type: 'accept_channel',
    basepoints: basepointsOf(sb),
    firstPoints: [pb.point(0), pb.point(1)],
  };
  const cfg = configFromOpen(open, accept);
  const payer = Channel.opened(cfg, sa, 'opener', mode, accept.firstPoints);
  const payee = Channel.opened(cfg, sb, 'acceptor', mode, open.firstPoints);
  payee.acceptInitialSignature(payer.signInitialCommitment());
  payer.acceptInitialSignature(payee.signInitialCommitment());

  const deliver = (to: Channel, msgs: LnMessage[], finalised: number[] = []): LnMessage[] => {
    const out: LnMessage[] = [];
    const events: TurnEvents = { finalised };
    for (const m of msgs) to.receive(decodeMessage(encodeMessage(m)), out, events);
    if (to.side === 'acceptor' && mode === 'htlc') to.fulfillCommittedHtlcs(out);
    return out;
  };
  const pay = (amounts: bigint[], tamper?: (m: LnMessage) => LnMessage) => {
    let msgs: LnMessage[] = [];
    const ids = payer.proposePayments(amounts, msgs);
    const finalised: number[] = [];
    let toPayee = true;
    while (msgs.length > 0) {
      msgs = deliver(toPayee ? payee : payer, tamper ? msgs.map(tamper) : msgs, finalised);
      toPayee = !toPayee;
    }
    return { ids, finalised };
  };
  return { payer, payee, deliver, pay };
}
