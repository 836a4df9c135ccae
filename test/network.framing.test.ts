// run-tests lane: in-process
/**
 * The P2P framing and the transport's limits before authentication (issue #15, hole 8): the decoder
 * copies each byte once however the stream is cut, and a peer that has not authenticated gets a
 * bounded frame size, byte budget and time. In process, over real loopback sockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { encodeFrames, FrameDecoder, FrameError, MAX_FRAME_BYTES } from '../src/network/framing.ts';
import { Transport, type PreAuthLimits } from '../src/network/transport.ts';
import { waitFor as waitForIn } from './helpers/treasury-pair.ts';

const waitFor = (cond: () => boolean) => waitForIn(cond, 30_000);

function lengthPrefix(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

test('a 16 MiB frame in 64 KiB chunks decodes whole, each byte copied once, the chunks kept as a list', () => {
  let copied = 0;
  const decoder = new FrameDecoder({
    onCopy: (n) => {
      copied += n;
    },
  });
  const frame = Buffer.alloc(MAX_FRAME_BYTES);
  for (let i = 0; i < frame.length; i += 4096) frame.writeUInt32BE(i, i);
  const wire = Buffer.concat([encodeFrames([frame]), encodeFrames([Uint8Array.of(7)])]);
  const chunk = 64 * 1024;
  const out: Uint8Array[] = [];
  let maxChunks = 0;
  for (let off = 0; off < wire.length; off += chunk) {
    // Copies of each chunk, as a socket hands over fresh buffers.
    out.push(...decoder.push(Buffer.from(wire.subarray(off, off + chunk))));
    maxChunks = Math.max(maxChunks, decoder.chunkCount);
    if (out.length === 0) assert.equal(copied, 0, 'nothing is copied before the frame is complete');
  }
  assert.equal(out.length, 2);
  assert.ok(Buffer.from(out[0]!).equals(frame));
  assert.deepEqual([...out[1]!], [7]);
  // Linear: every payload byte copied exactly once (joining the buffer per chunk copied ~2 GiB here).
  assert.equal(copied, MAX_FRAME_BYTES + 1);
  // The frame spans 257 chunks: the first 256 were held as they came, unjoined, until the last completed it.
  assert.equal(maxChunks, Math.ceil((MAX_FRAME_BYTES + 4) / chunk) - 1);
  assert.equal(decoder.chunkCount, 0);
  assert.equal(decoder.buffered, 0);
});

test('frames split at every byte boundary, or fed one byte at a time, decode the same', () => {
  const frames = [
    Uint8Array.of(),
    Uint8Array.of(1),
    Uint8Array.from({ length: 300 }, (_, i) => i & 0xff),
    Uint8Array.of(9, 8, 7, 6, 5),
  ];
  const wire = encodeFrames(frames);
  const expect = frames.map((f) => [...f]);
  for (let cut = 0; cut <= wire.length; cut++) {
    const d = new FrameDecoder();
    const out = [...d.push(wire.subarray(0, cut)), ...d.push(wire.subarray(cut))];
    assert.deepEqual(
      out.map((f) => [...f]),
      expect,
      `cut at ${cut}`,
    );
    assert.equal(d.buffered, 0);
  }
  const d = new FrameDecoder();
  const out: Uint8Array[] = [];
  for (let i = 0; i < wire.length; i++) out.push(...d.push(wire.subarray(i, i + 1)));
  assert.deepEqual(
    out.map((f) => [...f]),
    expect,
  );
});

test('decoded frames are fresh copies, not views of the socket buffers', () => {
  const wire = encodeFrames([Uint8Array.of(1, 2, 3)]);
  const [frame] = new FrameDecoder().push(wire);
  wire.fill(0);
  assert.deepEqual([...frame!], [1, 2, 3]);
  assert.notEqual(frame!.buffer, wire.buffer);
});

test('the pre-handshake frame limit refuses an oversize length prefix as soon as its 4 bytes are in', () => {
  const d = new FrameDecoder({ maxFrameBytes: 64 * 1024 });
  const header = lengthPrefix(MAX_FRAME_BYTES);
  for (let i = 0; i < 3; i++) assert.deepEqual(d.push(header.subarray(i, i + 1)), []);
  assert.throws(
    () => d.push(header.subarray(3)),
    (e: unknown) => e instanceof FrameError && /16777216 bytes exceeds 65536/.test(e.message),
  );
  // The prefix stays unread: still refused, and nothing buffered beyond it.
  assert.throws(() => d.next(), FrameError);
  assert.equal(d.buffered, 4);
  // A frame of exactly the limit is waited for, not refused.
  const ok = new FrameDecoder({ maxFrameBytes: 64 * 1024 });
  assert.deepEqual(ok.push(lengthPrefix(64 * 1024)), []);
  // Past authentication the limit is raised and decoding goes on where it stopped.
  const raised = new FrameDecoder({ maxFrameBytes: 4 });
  assert.deepEqual(
    raised.push(encodeFrames([Uint8Array.of(1), new Uint8Array(10)])).map((f) => f.length),
    [1],
  );
  assert.throws(() => raised.next(), FrameError);
  raised.maxFrameBytes = MAX_FRAME_BYTES;
  assert.equal(raised.next()?.length, 10);
  // And MAX_FRAME_BYTES bounds everything by default.
  assert.throws(() => new FrameDecoder().push(lengthPrefix(MAX_FRAME_BYTES + 1)), FrameError);
});

// ─────────────── the transport before authentication ───────────────

interface Server {
  transport: Transport;
  port: number;
  frames: Array<{ conn: string; frame: Uint8Array }>;
  closed: Map<string, string>;
  opened: string[];
}

async function server(
  preAuth: Partial<PreAuthLimits>,
  onFrames?: (s: Server, conn: string, frames: Uint8Array[]) => void | Promise<unknown>,
): Promise<Server> {
  const s = { frames: [], closed: new Map(), opened: [] } as unknown as Server;
  s.transport = new Transport(
    {
      onOpen: (conn) => {
        s.opened.push(conn);
      },
      onFrames: (conn, frames) => {
        for (const frame of frames) s.frames.push({ conn, frame });
        return onFrames?.(s, conn, frames);
      },
      onClose: (conn, reason) => {
        s.closed.set(conn, reason);
      },
    },
    { preAuth },
  );
  s.port = await s.transport.listen('127.0.0.1', 0);
  return s;
}

function client(port: number): Promise<{ socket: Socket; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let closed = false;
    socket.on('close', () => {
      closed = true;
    });
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve({ socket, closed: () => closed }));
    socket.once('error', reject);
  });
}

test('transport: an oversize length prefix before authentication closes the connection at once, delivering nothing', async () => {
  const s = await server({});
  try {
    const c = await client(s.port);
    c.socket.write(lengthPrefix(MAX_FRAME_BYTES));
    await waitFor(() => s.closed.size === 1 && c.closed());
    assert.match([...s.closed.values()][0]!, /frame of 16777216 bytes exceeds 65536 before authentication/);
    assert.equal(s.frames.length, 0);
  } finally {
    await s.transport.stop();
  }
});

test('transport: more than the byte budget before authentication, in small frames, closes the connection', async () => {
  // Frames are applied (the promise settles) without authenticating, as the enclave does with garbage.
  const s = await server({ maxBytes: 8 * 1024 }, () => Promise.resolve());
  try {
    const c = await client(s.port);
    const frames = Array.from({ length: 64 }, () => new Uint8Array(1000));
    c.socket.write(encodeFrames(frames));
    await waitFor(() => s.closed.size === 1 && c.closed());
    assert.match([...s.closed.values()][0]!, /more than 8192 bytes before authentication/);
    // Only the frames wholly inside the budget were handed on: 8 of 1,004 bytes each.
    assert.equal(s.frames.length, 8);
  } finally {
    await s.transport.stop();
  }
});

test('transport: a silent unauthenticated connection is closed after the time limit; an authenticated one is not', async () => {
  // 1 s: long enough that the authenticated client's first frame is in before it even on a loaded machine.
  const s = await server({ timeoutMs: 1_000 }, (srv, conn, frames) => {
    if (frames[0]!.length === 1) srv.transport.authenticated(conn);
  });
  try {
    const authed = await client(s.port);
    authed.socket.write(encodeFrames([Uint8Array.of(1)]));
    const silent = await client(s.port);
    await waitFor(() => s.closed.size === 1 && silent.closed());
    assert.match([...s.closed.values()][0]!, /not authenticated within 1000 ms/);
    // The authenticated one outlives the limit: it still carries a frame well past it.
    authed.socket.write(encodeFrames([new Uint8Array(1024 * 1024)]));
    await waitFor(() => s.frames.some((f) => f.frame.length === 1024 * 1024));
    assert.equal(authed.closed(), false);
    assert.equal(s.closed.size, 1);
  } finally {
    await s.transport.stop();
  }
});

test('transport: traffic right behind the last handshake frame waits for that frame to be applied, then goes on if it authenticated', async () => {
  // The peer's first authenticated frame (200 KiB, over the pre-auth frame limit and byte budget)
  // arrives in the same write as its hs_finish, before the host hears the handshake completed.
  const big = new Uint8Array(200 * 1024).fill(5);
  for (const authenticates of [true, false]) {
    const s = await server({ maxBytes: 100 * 1024 }, (srv, conn, frames) => {
      if (frames[0]!.length !== 3) return;
      return new Promise<void>((resolve) =>
        setImmediate(() => {
          if (authenticates) srv.transport.authenticated(conn);
          resolve();
        }),
      );
    });
    try {
      const c = await client(s.port);
      c.socket.write(encodeFrames([Uint8Array.of(1, 2, 3), big]));
      if (authenticates) {
        await waitFor(() => s.frames.length === 2);
        assert.ok(Buffer.from(s.frames[1]!.frame).equals(Buffer.from(big)));
        assert.equal(s.closed.size, 0);
      } else {
        await waitFor(() => s.closed.size === 1 && c.closed());
        assert.match([...s.closed.values()][0]!, /before authentication/);
        assert.equal(s.frames.length, 1);
      }
    } finally {
      await s.transport.stop();
    }
  }
});
