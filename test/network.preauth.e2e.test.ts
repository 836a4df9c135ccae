// run-tests lane: light
/**
 * Issue #15, hole 8: anyone who can reach a node's P2P port, before any handshake, tries to tie up the
 * host's event loop and memory with one huge frame. A real node process and the embedded chain. And the
 * other way round: a node dialling a listener that accepts and never handshakes gives up with a definite
 * `502 peer_unreachable` (the connection closed, nothing saved), not `504 timeout` (outcome unknown).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { MAX_FRAME_BYTES } from '../src/network/framing.ts';
import { nodesOnOneChain, waitUntil } from './helpers/network.ts';

const { startNode } = nodesOnOneChain();

function rawSocket(p2p: string): Promise<{ socket: Socket; closed: () => boolean }> {
  const [host, port] = p2p.split(':');
  return new Promise((resolve, reject) => {
    const socket = connect({ host: host!, port: Number(port) });
    let closed = false;
    socket.on('close', () => {
      closed = true;
    });
    socket.on('error', () => undefined); // EPIPE / ECONNRESET once the node hangs up
    socket.once('connect', () => resolve({ socket, closed: () => closed }));
    socket.once('error', reject);
  });
}

/**
 * Announces a frame of MAX_FRAME_BYTES, then sends it in 64 KiB chunks, one after the kernel took the
 * last, until the node hangs up or all of it went out. Resolves with the bytes the kernel accepted.
 */
async function flood(socket: Socket, closed: () => boolean): Promise<number> {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(MAX_FRAME_BYTES);
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  let written = 0;
  const write = (b: Buffer) => new Promise<boolean>((resolve) => socket.write(b, (err) => resolve(!err)));
  if (!(await write(header))) return written;
  written += header.length;
  while (written < MAX_FRAME_BYTES + 4 && !closed()) {
    if (!(await write(chunk))) break;
    written += chunk.length;
  }
  return written;
}

test(
  'a 16 MiB frame from an unauthenticated peer is refused at once, and the REST API keeps answering',
  { timeout: 120_000 },
  async () => {
    const node = await startNode();
    const floods = await Promise.all(
      [1, 2, 3, 4].map(async () => {
        const s = await rawSocket(node.ready.p2p);
        return { ...s, sent: flood(s.socket, s.closed) };
      }),
    );
    // While the floods run, the node answers its API.
    const info = await node.api('GET', '/v1/getinfo');
    assert.equal(info.status, 200);
    assert.equal(info.body.node_id, node.id);
    for (const f of floods) {
      const sent = await f.sent;
      await waitUntil(() => f.closed(), 30_000, 'the node closing the flooding connection');
      // The node hung up long before the frame was complete. What the client got out includes what the
      // kernels buffered on the way (a few MiB at most on loopback), so the bound is the frame, not the budget.
      assert.ok(
        sent < MAX_FRAME_BYTES,
        `the node read a whole ${MAX_FRAME_BYTES}-byte frame before closing (${sent} bytes went out)`,
      );
    }
    assert.equal((await node.api('GET', '/v1/getinfo')).status, 200);
  },
);

test(
  'an unauthenticated connection that says nothing is closed after the handshake time limit',
  { timeout: 120_000 },
  async () => {
    const node = await startNode(['--p2p-handshake-timeout-ms', '500']);
    const silent = await rawSocket(node.ready.p2p);
    // Half a length prefix, then silence: the connection is idle, not just empty.
    const partial = await rawSocket(node.ready.p2p);
    partial.socket.write(Buffer.from([0, 0]));
    await waitUntil(() => silent.closed() && partial.closed(), 30_000, 'the node closing silent connections');
    assert.equal((await node.api('GET', '/v1/getinfo')).status, 200);
  },
);

test(
  'dialling a peer that accepts and never handshakes: 502 peer_unreachable, not 504 timeout',
  { timeout: 120_000 },
  async () => {
    // A pre-auth limit longer than the dial's own 10 s wait: the wait, not the limit, ends the dial.
    const node = await startNode(['--p2p-handshake-timeout-ms', '60000']);
    const held: Socket[] = [];
    const mute = createServer((s) => void held.push(s));
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    try {
      const address = `127.0.0.1:${(mute.address() as AddressInfo).port}`;
      const r = await node.api('POST', '/v1/peers', { address });
      assert.equal(r.status, 502, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'peer_unreachable');
      assert.match(r.body.error.message, /handshake timed out/);
      assert.ok(held.length > 0, 'the node did reach the listener: it is the handshake that never finished');
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => mute.close(r));
    }
  },
);
