/**
 * The REST wallet API's routes, as data: method, path, who may call it, the schemas of its body, query
 * and success answer, and its handler. The express app (app.ts) and the OpenAPI document (openapi.ts)
 * are both built from this one table; test/api.test.ts checks what is served against the document.
 */
import { Type } from '@sinclair/typebox';
import { QuoteSchema } from '../../enclave-sim/quote.ts';
import type { TreasuryNode } from '../node/treasury-node.ts';
import { NodeError } from '../node/errors.ts';
import { MAX_ROUNDS } from '../node/multihop-rounds.ts';
import { addressParam } from './params.ts';
import { paymentRoutes } from './payment-routes.ts';
import { AmountSat, DepositId, Hex32, NodeId, Nullable, PaymentAnswer, route, SatString, type Route } from './route.ts';
import { ChannelView, CommitteeView, DepositView, TreasuryInterface } from '../enclave/treasury/interface.ts';

export type { Access, RegtestFaucet, Route, RouteContext } from './route.ts';

const MhView = TreasuryInterface.ecalls.mh_view.result;
const SettleAnswer = TreasuryInterface.ecalls.channel_settle.result;
const FeesAnswer = TreasuryInterface.ecalls.set_fees.result;

const Role = Type.Union([Type.Literal('payer'), Type.Literal('intermediary'), Type.Literal('destination')]);
const Phase = Type.Union(
  ['locked', 'signed', 'committed', 'released', 'done', 'aborted'].map((p) => Type.Literal(p)),
  { description: 'the round at this node: locked, signed, committed, released, done or aborted' },
);
/** One path round at this node (src/node/multihop-rounds.ts). */
const MultihopRound = Type.Object({
  round_id: Hex32,
  role: Role,
  phase: Phase,
  route: Type.Array(NodeId, { description: 'node ids from the payer to the destination' }),
  amount_sat: { ...SatString, description: 'what the destination receives: the sum of the payments that went on' },
  fee_sat: { ...SatString, description: 'what the path charges the round in all' },
  amounts: Type.Array(SatString, { description: 'what moves on each channel of the path' }),
  txid: Nullable(Type.String({ description: 'the path settlement τ, once signed' })),
  code: Nullable(Type.String({ description: 'why the round aborted' })),
  payments: Type.Array(
    Type.Object({
      payment_id: Nullable(Type.String({ minLength: 1, description: "the payer's id (GET /v1/payments)" })),
      amount_sat: SatString,
      fee_sat: { ...SatString, description: 'its share of what the path charges' },
      outcome: Type.Union([Type.Literal('pending'), Type.Literal('succeeded'), Type.Literal('failed')]),
      code: Nullable(Type.String()),
    }),
    { description: 'the payments in the round, in its order (empty for a round from before a restart)' },
  ),
});

export const routes: Route[] = [
  route({
    method: 'get',
    path: '/v1/getinfo',
    access: 'read',
    summary: 'Node id, enclave measurement, network, block height, peers, channel count',
    errors: [],
    response: Type.Object({
      node_id: NodeId,
      /** Stable across promotions: a committee's identity on every member, a lone treasury's node id. */
      treasury_id: NodeId,
      measurement: Hex32,
      network: Type.Literal('regtest'),
      block_height: Nullable(Type.Integer({ minimum: 0 })),
      num_peers: Type.Integer({ minimum: 0 }),
      num_channels: Type.Integer({ minimum: 0 }),
      p2p_port: Type.Integer({ minimum: 0, maximum: 65535 }),
      /** Where settlements and releases pay this treasury's side: a committee's on every member, as treasury_id. */
      payout_address: Type.String(),
      min_confirmations: Type.Integer({ minimum: 0 }),
      committee: Nullable(CommitteeView),
    }),
    handler: async ({ node }) => {
      const i = await node.info();
      return {
        node_id: i.node_id,
        treasury_id: i.treasury_id,
        measurement: i.measurement,
        network: 'regtest',
        block_height: i.block_height,
        num_peers: i.peers.length,
        num_channels: i.num_channels,
        p2p_port: i.p2p_port,
        payout_address: i.payout_address,
        min_confirmations: i.min_confirmations,
        committee: i.committee,
      };
    },
  }),
  route({
    method: 'get',
    path: '/v1/committee',
    access: 'read',
    summary:
      "This node's committee chain: role, m-of-n, chain order, replication sequence numbers, which members are connected",
    errors: [404],
    response: CommitteeView,
    handler: async ({ node }) => {
      const i = await node.info();
      if (!i.committee)
        throw new NodeError(
          'no_committee',
          'this treasury has no committee (start it with --committee N or --backup-of)',
        );
      return i.committee;
    },
  }),
  route({
    method: 'post',
    path: '/v1/committee/members',
    access: 'admin',
    summary:
      'Primary: adds the node at address (host:port, started with --backup-of this primary) at the tail, once it attests this code, under a new view that q of the current members sign; answers once it is caught up',
    errors: [400, 403, 404, 409, 502, 503],
    body: Type.Object({ address: Type.String({ minLength: 3, maxLength: 128 }) }, { additionalProperties: false }),
    response: Type.Object({ epoch: Type.Integer(), members: Type.Array(NodeId) }),
    handler: ({ node }, body) => node.addMember(addressParam(body.address)),
  }),
  route({
    method: 'delete',
    path: '/v1/committee/members/:node_id',
    access: 'admin',
    summary:
      'Primary: removes a member (a dead one too) under a new view that q of the current members sign; m + 1 live members must remain',
    errors: [400, 404, 409],
    response: Type.Object({ epoch: Type.Integer(), members: Type.Array(NodeId) }),
    handler: ({ node, params }) => node.removeMember(memberParam(params)),
  }),
  route({
    method: 'get',
    path: '/v1/attestation',
    access: 'read',
    summary: "A fresh quote over the node id for the caller's nonce (16-64 bytes hex), for anyone to verify",
    query: Type.Object({ nonce: Type.String({ pattern: '^([0-9a-f]{2}){16,64}$' }) }, { additionalProperties: false }),
    errors: [],
    response: Type.Object({
      node_id: NodeId,
      quote: QuoteSchema,
      trust_anchor: Type.String({ pattern: '^[0-9a-f]{66}$' }),
    }),
    handler: ({ node }, _b, q) => node.attest(q.nonce),
  }),
  route({
    method: 'get',
    path: '/v1/balance',
    access: 'read',
    summary: 'On-chain deposits (free, in channels, pending) and channel balances (local, remote)',
    errors: [],
    response: Type.Object({
      deposits: Type.Object({ free_sat: SatString, in_channels_sat: SatString, pending_sat: SatString }),
      channels: Type.Object({ local_balance_sat: SatString, remote_balance_sat: SatString }),
    }),
    handler: async ({ node }) => {
      const [deposits, channels] = await Promise.all([node.deposits(), node.channels()]);
      const sum = (xs: Array<string | null>) => xs.reduce((s, v) => s + BigInt(v ?? '0'), 0n).toString();
      const open = channels.filter((c) => c.status !== 'closed');
      return {
        deposits: {
          free_sat: sum(deposits.filter((d) => d.status === 'free').map((d) => d.value_sat)),
          in_channels_sat: sum(deposits.filter((d) => d.status === 'in_channel').map((d) => d.value_sat)),
          pending_sat: sum(deposits.filter((d) => d.status === 'pending').map((d) => d.value_sat)),
        },
        channels: {
          local_balance_sat: sum(open.map((c) => c.local_balance_sat)),
          remote_balance_sat: sum(open.map((c) => c.remote_balance_sat)),
        },
      };
    },
  }),
  route({
    method: 'post',
    path: '/v1/deposits',
    access: 'admin',
    status: 201,
    summary:
      'A new deposit address; on regtest {fund: true, amount_sat} also funds it from the faucet and mines the confirmations',
    body: Type.Object(
      { amount_sat: Type.Optional(AmountSat), fund: Type.Optional(Type.Boolean()) },
      { additionalProperties: false },
    ),
    response: DepositView,
    handler: async ({ node, faucet }, body) => {
      if (body.fund && body.amount_sat === undefined)
        throw new NodeError('invalid_argument', 'fund: true needs amount_sat');
      if (body.fund && !faucet)
        throw new NodeError('invalid_argument', 'fund: true is only available on regtest with a faucet');
      const dep = await node.newDeposit(); // a backup's not_primary comes first: nothing funded
      if (!body.fund || !faucet) return dep;
      const { minConfirmations } = node.opts;
      const out = await faucet.fundAndConfirm(
        dep.address,
        BigInt(body.amount_sat!),
        Math.max(1, minConfirmations ?? 1),
      );
      return node.depositFunded(dep.deposit_id, out.txid, out.vout);
    },
  }),
  route({
    method: 'get',
    path: '/v1/deposits',
    access: 'read',
    summary: 'All deposits and their status',
    errors: [],
    response: Type.Object({ deposits: Type.Array(DepositView) }),
    handler: async ({ node }) => ({ deposits: await node.deposits() }),
  }),
  route({
    method: 'post',
    path: '/v1/deposits/:id/funded',
    access: 'admin',
    summary: 'Report the funding output of a deposit; the enclave checks it on chain',
    body: Type.Object(
      { txid: Hex32, vout: Type.Integer({ minimum: 0, maximum: 100_000 }) },
      { additionalProperties: false },
    ),
    response: DepositView,
    handler: ({ node, params }, body) => node.depositFunded(depositParam(params), body.txid, body.vout),
  }),
  route({
    method: 'post',
    path: '/v1/deposits/:id/release',
    access: 'admin',
    summary: 'Pay a free deposit back on chain (to address, or the node payout address)',
    body: Type.Object(
      { address: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })) },
      { additionalProperties: false },
    ),
    response: Type.Object({ deposit_id: Type.String(), txid: Hex32, fee_sat: SatString }),
    handler: async ({ node, params }, body) => {
      const r = await node.releaseDeposit(depositParam(params), body.address);
      return { deposit_id: r.deposit_id, txid: r.txid, fee_sat: r.fee_sat };
    },
  }),
  route({
    method: 'post',
    path: '/v1/peers',
    access: 'admin',
    status: 201,
    summary: 'Connect to a peer at host:port and run mutual attestation',
    body: Type.Object({ address: Type.String({ minLength: 3, maxLength: 260 }) }, { additionalProperties: false }),
    response: Type.Object({ peer_id: NodeId, address: Type.String() }),
    handler: async ({ node }, body) => ({ peer_id: await node.connect(body.address), address: body.address }),
  }),
  route({
    method: 'get',
    path: '/v1/peers',
    access: 'read',
    summary: 'Connected, attested peers',
    errors: [],
    response: Type.Object({
      peers: Type.Array(Type.Object({ peer_id: NodeId, conn: Type.String(), address: Nullable(Type.String()) })),
    }),
    handler: async ({ node }) => ({ peers: node.peers() }),
  }),
  route({
    method: 'post',
    path: '/v1/channels',
    access: 'admin',
    status: 201,
    summary:
      'Open a channel with a connected peer and put deposits in it (deposit_ids, or amount_sat to pick free deposits)',
    body: Type.Object(
      {
        peer_id: NodeId,
        deposit_ids: Type.Optional(Type.Array(DepositId, { maxItems: 100 })),
        amount_sat: Type.Optional(AmountSat),
      },
      { additionalProperties: false },
    ),
    response: ChannelView,
    handler: async ({ node }, body) => {
      await node.requirePrimary(); // before the deposit checks, so a backup answers not_primary
      const ids =
        body.deposit_ids ?? (body.amount_sat !== undefined ? await pickDeposits(node, BigInt(body.amount_sat)) : []);
      const deposits = await node.deposits();
      for (const id of ids) {
        const d = deposits.find((x) => x.deposit_id === id);
        if (!d) throw new NodeError('unknown_deposit', `no deposit ${id}`);
        if (d.status !== 'free')
          throw new NodeError(
            d.status === 'in_channel' ? 'deposit_in_use' : 'deposit_not_free',
            `deposit ${id} is ${d.status}`,
          );
      }
      let ch = await node.openChannel(body.peer_id);
      for (const id of ids) ch = await node.addDeposit(ch.channel_id, id);
      return ch;
    },
  }),
  route({
    method: 'get',
    path: '/v1/channels',
    access: 'read',
    summary: 'All channels',
    errors: [],
    response: Type.Object({ channels: Type.Array(ChannelView) }),
    handler: async ({ node }) => ({ channels: await node.channels() }),
  }),
  route({
    method: 'get',
    path: '/v1/channels/:id',
    access: 'read',
    summary: 'One channel',
    errors: [404],
    response: ChannelView,
    handler: ({ node, params }) => node.channel(channelParam(params)),
  }),
  route({
    method: 'post',
    path: '/v1/channels/:id/deposits',
    access: 'admin',
    summary: 'Add a free deposit to a channel',
    body: Type.Object({ deposit_id: DepositId }, { additionalProperties: false }),
    response: ChannelView,
    handler: ({ node, params }, body) => node.addDeposit(channelParam(params), body.deposit_id),
  }),
  route({
    method: 'post',
    path: '/v1/channels/:id/deposits/remove',
    access: 'admin',
    summary: 'Take a deposit out of a channel (the balance must cover it)',
    body: Type.Object({ deposit_id: DepositId }, { additionalProperties: false }),
    response: ChannelView,
    handler: ({ node, params }, body) => node.removeDeposit(channelParam(params), body.deposit_id),
  }),
  route({
    method: 'post',
    path: '/v1/channels/:id/settle',
    access: 'admin',
    summary: 'Settle the channel on chain alone, with the latest balances',
    body: Type.Object({}, { additionalProperties: false }),
    response: SettleAnswer,
    handler: async ({ node, params }) => node.settle(channelParam(params)),
  }),
  ...paymentRoutes,
  route({
    method: 'get',
    path: '/v1/graph',
    access: 'read',
    summary: "The channel graph learnt from the network's signed announcements (for multi-hop routing)",
    errors: [],
    response: Type.Object({ nodes: MhView.properties.nodes }),
    handler: async ({ node }) => ({ nodes: (await node.multihopView()).nodes }),
  }),
  route({
    method: 'get',
    path: '/v1/multihop',
    access: 'read',
    summary:
      'Path rounds this node takes part in (payer, intermediary or destination), newest first: phase, route, totals and the payments in each',
    query: Type.Object(
      {
        limit: Type.Optional(
          Type.String({
            pattern: '^[1-9][0-9]{0,3}$',
            description: 'how many rounds, newest first (default and most: 1000)',
          }),
        ),
      },
      { additionalProperties: false },
    ),
    errors: [],
    response: Type.Object({ rounds: Type.Array(MultihopRound), limit: Type.Integer({ minimum: 1 }) }),
    handler: async ({ node }, _b, q) => {
      const limit = Math.min(MAX_ROUNDS, Number(q.limit ?? MAX_ROUNDS));
      return { rounds: await node.multihopRounds(limit), limit };
    },
  }),
  route({
    method: 'post',
    path: '/v1/fees',
    access: 'admin',
    summary: 'What this node charges to forward a multi-hop payment: base_sat + amount × ppm / 1,000,000',
    body: Type.Object(
      {
        base_sat: Type.Integer({ minimum: 0, maximum: 2_100_000_000_000_000 }),
        ppm: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
      },
      { additionalProperties: false },
    ),
    response: FeesAnswer,
    handler: ({ node }, body) => node.setFees(body.base_sat, body.ppm),
  }),
  route({
    method: 'get',
    path: '/v1/payments',
    access: 'read',
    summary: 'Payment history, newest first (offset, limit)',
    query: Type.Object(
      {
        offset: Type.Optional(Type.String({ pattern: '^[0-9]{1,9}$' })),
        limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
      },
      { additionalProperties: false },
    ),
    errors: [],
    response: Type.Object({
      payments: Type.Array(PaymentAnswer),
      total: Type.Integer({ minimum: 0 }),
      offset: Type.Integer({ minimum: 0 }),
      limit: Type.Integer({ minimum: 1 }),
    }),
    handler: async ({ node }, _b, q) => {
      const offset = Number(q.offset ?? 0);
      const limit = Math.min(1000, Math.max(1, Number(q.limit ?? 100)));
      return { ...node.payments.page(offset, limit), offset, limit };
    },
  }),
];

function memberParam(params: Record<string, string>): string {
  const id = params.node_id ?? '';
  if (!/^(02|03)[0-9a-f]{64}$/.test(id)) throw new NodeError('invalid_argument', 'node_id is not a node id');
  return id;
}

function channelParam(params: Record<string, string>): string {
  const id = params.id ?? '';
  if (!/^[0-9a-f]{64}$/.test(id)) throw new NodeError('invalid_argument', 'channel id must be 64 hex characters');
  return id;
}

function depositParam(params: Record<string, string>): string {
  const id = params.id ?? '';
  if (!/^[a-z0-9]{1,32}$/.test(id))
    throw new NodeError('invalid_argument', 'deposit id must be 1-32 lower-case letters or digits');
  return id;
}

/** Free deposits, largest first, until they cover `amount`. */
async function pickDeposits(node: TreasuryNode, amount: bigint): Promise<string[]> {
  const free = (await node.deposits())
    .filter((d) => d.status === 'free')
    .sort((a, b) => (BigInt(b.value_sat!) > BigInt(a.value_sat!) ? 1 : -1));
  const ids: string[] = [];
  let sum = 0n;
  for (const d of free) {
    if (sum >= amount) break;
    ids.push(d.deposit_id);
    sum += BigInt(d.value_sat!);
  }
  if (sum < amount) throw new NodeError('insufficient_funds', `free deposits total ${sum} sat < ${amount} sat`);
  return ids;
}
