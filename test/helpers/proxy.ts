/**
 * A TCP proxy that plays the malicious host (or network) between two treasury nodes: it relays
 * length-prefixed frames unchanged, and on request replays the last frame, flips a byte in the next, swaps
 * the next two, drops every frame in one direction, or refuses new connections.
 */
import { createServer, connect, type Socket } from 'node:net';
import { encodeFrames, FrameDecoder } from '../../src/network/framing.ts';

type Dir = 'toTarget' | 'toClient';

export async function startTamperingProxy(target: string) {
  const [host, port] = target.split(':') as [string, string];
  const last: Record<Dir, Uint8Array | null> = { toTarget: null, toClient: null };
  const pending: Record<Dir, 'replay' | 'flip' | null> = { toTarget: null, toClient: null };
  const dropping: Record<Dir, boolean> = { toTarget: false, toClient: false };
  /** dropFromNext: once the next frame in `after` is relayed, frames in `drop` are dropped. */
  let armed: { after: Dir; drop: Dir } | null = null;
  const live: Array<{ client: Socket; upstream: Socket }> = [];
  /** swapNext: the frame held back until the one after it has been relayed, and who waits for the swap. */
  const swap: Record<Dir, { armed: boolean; held: Uint8Array | null; done: (() => void) | null }> = {
    toTarget: { armed: false, held: null, done: null },
    toClient: { armed: false, held: null, done: null },
  };
  let refusing = false;

  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connect({ host, port: Number(port) });
    live.push({ client, upstream });
    const pipe = (from: Socket, to: Socket, dir: Dir) => {
      const dec = new FrameDecoder();
      from.on('data', (chunk: Buffer) => {
        for (let frame of dec.push(chunk)) {
          if (dropping[dir]) continue;
          if (pending[dir] === 'flip') {
            frame = new Uint8Array(frame);
            frame[frame.length - 1]! ^= 0x80;
            pending[dir] = null;
          }
          const sw = swap[dir];
          if (sw.armed && sw.held === null) {
            sw.held = frame;
            continue;
          }
          last[dir] = frame;
          if (sw.armed && sw.held !== null) {
            to.write(encodeFrames([frame, sw.held]));
            sw.armed = false;
            sw.held = null;
            sw.done?.();
            continue;
          }
          to.write(encodeFrames([frame]));
          if (armed?.after === dir) {
            dropping[armed.drop] = true;
            armed = null;
          }
        }
      });
    };
    pipe(client, upstream, 'toTarget');
    pipe(upstream, client, 'toClient');
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  return {
    address: `127.0.0.1:${addr.port}`,
    /** Sends the last frame seen in `dir` again, on the newest connection. */
    replayLast(dir: Dir) {
      const conn = live[live.length - 1];
      const frame = last[dir];
      if (!conn || !frame) throw new Error('nothing to replay');
      (dir === 'toTarget' ? conn.upstream : conn.client).write(encodeFrames([frame]));
    },
    /** From now on, frames in `dir` are dropped (true) or relayed again (false). */
    drop(dir: Dir, on = true) {
      dropping[dir] = on;
    },
    /** Once the next frame in `after` has been relayed, frames in `drop` are dropped from then on (an answer gets through, what follows it the other way does not). */
    dropFromNext(after: Dir, drop: Dir) {
      armed = { after, drop };
    },
    /** Flips a bit in the next frame relayed in `dir`. */
    flipNext(dir: Dir) {
      pending[dir] = 'flip';
    },
    /**
     * Holds the next frame relayed in `dir` back and sends it right after the one that follows it (two
     * authenticated frames swapped). Resolves once both went out, swapped.
     */
    swapNext(dir: Dir): Promise<void> {
      return new Promise<void>((resolve) => {
        swap[dir] = { armed: true, held: null, done: resolve };
      });
    },
    /** Whether swapNext(dir) is holding a frame back, waiting for the next one. */
    holding(dir: Dir): boolean {
      return swap[dir].held !== null;
    },
    /** From now on, new connections are closed at once (true) or relayed again (false); live ones stay. */
    refuseNew(on = true) {
      refusing = on;
    },
    async close() {
      for (const c of live) {
        c.client.destroy();
        c.upstream.destroy();
      }
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
