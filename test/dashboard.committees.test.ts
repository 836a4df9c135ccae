/**
 * The dashboard's committee view (src/dashboard/committees.ts) against members' REST APIs (small HTTP
 * servers answering GET /v1/committee as members do): every member of a treasury listed with its own
 * sequence numbers, epoch and REST URL; a promotion (the founding primary gone, its backups in a new view
 * under another primary) shown as it happens, once, with the new primary and the dead member unreachable.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NetworkFile, NetworkNode } from '../src/cli/client.ts';
import type { CommitteeView } from '../src/enclave/treasury/interface.ts';
import { silentLogger } from '../src/log/logger.ts';
import { CommitteeWatch } from '../src/dashboard/committees.ts';
import { tempDir } from './helpers/network.ts';

const id = (c: string) => `02${c.repeat(64)}`;
const [A, B, C] = [id('a'), id('b'), id('c')];
const servers: Server[] = [];
after(() => servers.forEach((s) => s.close()));

/** A member's API: GET /v1/committee answers whatever `view()` says now (null: 502, as a dead node's proxy would). */
async function member(
  name: string,
  nodeId: string,
  dir: string,
  view: () => CommitteeView | null,
): Promise<NetworkNode> {
  const server = createServer((req, res) => {
    const v = req.url === '/v1/committee' ? view() : null;
    res.writeHead(v ? 200 : 502, { 'content-type': 'application/json' });
    res.end(JSON.stringify(v ?? { error: { code: 'node_unreachable', message: 'down' } }));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const tokenFile = join(dir, `${name}.token`);
  await writeFile(tokenFile, 'token\n');
  const restUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { name, nodeId, restUrl, tokenFile, p2p: '127.0.0.1:1' };
}

test('every member listed with its own numbers; a promotion shown once, with the new primary', async () => {
  const dir = await tempDir('teechain-dash-committee-');
  let epoch = 0;
  let aliveA = true;
  const urls: Record<string, string> = {};
  const order = () => (epoch === 0 ? [A, B, C] : [B, C, A]);
  const view = (self: string, seq: number) => (): CommitteeView | null =>
    self === A && !aliveA
      ? null
      : {
          treasury_id: A,
          epoch,
          role: order()[0] === self ? 'primary' : 'backup',
          size: 3,
          threshold: 2,
          index: order().indexOf(self),
          seq,
          acked_seq: seq - 1,
          formed: true,
          members: order().map((n) => ({
            node_id: n,
            address: '127.0.0.1:1',
            rest_url: urls[n]!,
            connected: n !== A || aliveA,
          })),
        };
  const a = await member('alice', A, dir, view(A, 10));
  const b1 = await member('alice-b1', B, dir, view(B, 9));
  const b2 = await member('alice-b2', C, dir, view(C, 8));
  for (const m of [a, b1, b2]) urls[m.nodeId] = m.restUrl;
  const network: NetworkFile = {
    chain: { rpcUrl: 'http://127.0.0.1:1', rpcUser: '', rpcPassword: '' },
    nodes: [{ ...a, backups: [b1, b2] }],
    committee: 3,
  };
  const watch = new CommitteeWatch(network, silentLogger());

  const [c] = await watch.poll();
  assert.equal(c!.primary, 'alice');
  assert.equal(c!.committee_id, A);
  assert.deepEqual(
    c!.members.map((m) => [m.name, m.role, m.connected, m.acked_seq, m.seq, m.epoch, m.rest_url]),
    [
      ['alice', 'primary', true, 9, 10, 0, a.restUrl],
      ['alice-b1', 'backup', true, 8, 9, 0, b1.restUrl],
      ['alice-b2', 'backup', true, 7, 8, 0, b2.restUrl],
    ],
  );
  assert.equal(watch.viewChanges.length, 0);

  // The primary dies; its backups move to view 1 under alice-b1.
  aliveA = false;
  epoch = 1;
  const [d] = await watch.poll();
  assert.equal(d!.primary, 'alice-b1');
  assert.equal(d!.epoch, 1);
  assert.deepEqual(
    d!.members.map((m) => [m.name, m.role, m.reachable, m.connected, m.epoch]),
    [
      ['alice-b1', 'primary', true, true, 1],
      ['alice-b2', 'backup', true, true, 1],
      ['alice', 'backup', false, false, null],
    ],
  );
  assert.equal(watch.viewChanges.length, 1);
  const v = watch.viewChanges[0]!;
  assert.deepEqual([v.node, v.epoch, v.primary], ['alice', 1, 'alice-b1']);
  await watch.poll();
  assert.equal(watch.viewChanges.length, 1, 'the same view is not a new change');
});
