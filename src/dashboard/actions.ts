/**
 * The page's actions, carried out through the nodes' REST APIs with the tokens the dashboard server
 * holds (the page never sees one). Each answers with the node's own status and JSON body, so errors
 * reach the page exactly as the API gave them; only requests that name no node of the network, or are
 * malformed, are refused here, with the API's error shape and codes.
 */
import { randomBytes } from 'node:crypto';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { BitcoinRpcClient } from '../chain/rpc-client.ts';
import { NodeError } from '../node/errors.ts';
import type { Collector } from './collector.ts';
import type { NodeAnswer, NodeApi } from './node-api.ts';

const Name = Type.String({ minLength: 1, maxLength: 64 });
const Amount = Type.Integer({ minimum: 1, maximum: 2_100_000_000_000_000 });

export const ActionSchemas = {
  pay: Type.Object({ from: Name, to: Name, amount_sat: Amount }, { additionalProperties: false }),
  open: Type.Object({ from: Name, to: Name, amount_sat: Amount }, { additionalProperties: false }),
  settle: Type.Object(
    { node: Name, channel_id: Type.String({ pattern: '^[0-9a-f]{64}$' }) },
    { additionalProperties: false },
  ),
  fund: Type.Object({ node: Name, amount_sat: Amount }, { additionalProperties: false }),
  mine: Type.Object({ blocks: Type.Integer({ minimum: 1, maximum: 100 }) }, { additionalProperties: false }),
};
export type ActionName = keyof typeof ActionSchemas;

const checks = Object.fromEntries(
  Object.entries(ActionSchemas).map(([k, s]) => [k, TypeCompiler.Compile(s as TSchema)]),
) as Record<ActionName, ReturnType<typeof TypeCompiler.Compile>>;

export function isAction(name: string): name is ActionName {
  return Object.prototype.hasOwnProperty.call(ActionSchemas, name);
}

export class Actions {
  constructor(
    private readonly collector: Collector,
    private readonly rpc: BitcoinRpcClient,
  ) {}

  /** @throws NodeError invalid_argument for a malformed body or an unknown node name. */
  async run(name: ActionName, body: unknown): Promise<NodeAnswer> {
    const check = checks[name];
    if (!check.Check(body)) {
      const e = check.Errors(body).First();
      throw new NodeError(
        'invalid_argument',
        e ? `${e.path.replace(/^\//, '') || 'body'}: ${e.message}` : 'invalid request',
      );
    }
    switch (name) {
      case 'pay': {
        const b = body as Static<typeof ActionSchemas.pay>;
        const [from, to] = [this.node(b.from), this.node(b.to)];
        return from.request('POST', '/v1/payments', {
          dest: to.node.nodeId,
          amount_sat: b.amount_sat,
          idempotency_key: randomBytes(12).toString('hex'),
        });
      }
      case 'open': {
        const b = body as Static<typeof ActionSchemas.open>;
        const [from, to] = [this.node(b.from), this.node(b.to)];
        if (from === to) throw new NodeError('invalid_argument', 'a channel needs two different nodes');
        // A channel needs an attested session first; connecting twice is harmless.
        const peer = await from.request('POST', '/v1/peers', { address: to.node.p2p });
        if (peer.status >= 300) return peer;
        return from.request('POST', '/v1/channels', { peer_id: to.node.nodeId, amount_sat: b.amount_sat });
      }
      case 'settle': {
        const b = body as Static<typeof ActionSchemas.settle>;
        return this.node(b.node).request('POST', `/v1/channels/${b.channel_id}/settle`, {});
      }
      case 'fund': {
        const b = body as Static<typeof ActionSchemas.fund>;
        return this.node(b.node).request('POST', '/v1/deposits', { amount_sat: b.amount_sat, fund: true });
      }
      case 'mine': {
        const b = body as Static<typeof ActionSchemas.mine>;
        try {
          const hashes = await this.rpc.call<string[]>('generatetoaddress', [
            b.blocks,
            await this.rpc.call<string>('getnewaddress', []),
          ]);
          return { status: 200, body: { blocks: hashes, height: await this.rpc.getBlockCount() } };
        } catch (err) {
          return { status: 503, body: { error: { code: 'chain_unavailable', message: (err as Error).message } } };
        }
      }
    }
  }

  private node(name: string): NodeApi {
    const api = this.collector.api(name);
    if (!api)
      throw new NodeError(
        'invalid_argument',
        `no node ${name} in this network (nodes: ${this.collector.apis.map((a) => a.node.name).join(', ')})`,
      );
    return api;
  }
}
