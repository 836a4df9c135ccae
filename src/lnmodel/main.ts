/**
 * One party of the Lightning-style baseline as its own process.
 *
 *   tsx src/lnmodel/main.ts --role payee --port 0 --datadir D
 *   tsx src/lnmodel/main.ts --role payer --peer 127.0.0.1:PORT --datadir D [--mode balance|htlc] [--capacity-sat N]
 *
 * Prints one JSON ready line on stdout ({"type":"ready",…}; the payee's as soon as it listens, the payer's
 * once the channel is open), then serves JSON-line commands on stdin, answering each on stdout with the
 * same `id`:
 *   {"id":1,"cmd":"run","payments":1000,"batchSize":10,"amountSat":"1000","window":1}   (payer)
 *   {"id":2,"cmd":"state","minLocalIndex":0,"minRemoteIndex":0}   waits until settled, then summarises
 *   {"id":3,"cmd":"usage"}    {"id":4,"cmd":"inject","fault":"bad_commitment_signature"}   {"id":5,"cmd":"stop"}
 * Amounts travel as {"$big":"…"} or decimal strings (see wire.ts encodeJson).
 */
import { mkdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Party, type Fault, type Role } from './party.ts';
import { decodeJson, encodeJson, type LnMode } from './wire.ts';

export interface ReadyLine {
  type: 'ready';
  role: Role;
  pid: number;
  /** The payee's listening port. */
  port?: number;
}

function writeLine(value: unknown): void {
  process.stdout.write(Buffer.concat([encodeJson(value), Buffer.from('\n')]));
}

function toBigInt(v: unknown, what: string): bigint {
  if (typeof v === 'bigint') return v;
  if ((typeof v === 'string' && /^[0-9]+$/.test(v)) || (typeof v === 'number' && Number.isSafeInteger(v)))
    return BigInt(v);
  throw new Error(`${what} must be a non-negative integer`);
}

async function handle(party: Party, cmd: Record<string, unknown>): Promise<unknown> {
  switch (cmd.cmd) {
    case 'run':
      return party.runLoad({
        payments: Number(cmd.payments),
        batchSize: Number(cmd.batchSize),
        amountSat: toBigInt(cmd.amountSat, 'amountSat'),
        window: cmd.window === undefined ? 1 : Number(cmd.window),
      });
    case 'state':
      return party.settledState({
        localIndex: Number(cmd.minLocalIndex ?? 0),
        remoteIndex: Number(cmd.minRemoteIndex ?? 0),
      });
    case 'usage':
      return party.usage();
    case 'inject':
      if (cmd.fault !== 'bad_commitment_signature' && cmd.fault !== 'bad_revocation_secret')
        throw new Error('unknown fault');
      party.inject(cmd.fault as Fault);
      return { injected: cmd.fault };
    case 'stop':
      await party.stop();
      setImmediate(() => process.exit(0));
      return { stopped: true };
    default:
      throw new Error(`unknown command ${String(cmd.cmd)}`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      role: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      peer: { type: 'string' },
      datadir: { type: 'string' },
      mode: { type: 'string', default: 'balance' },
      'capacity-sat': { type: 'string', default: '1000000000' },
    },
  });
  const role = values.role as Role;
  if (role !== 'payer' && role !== 'payee') throw new Error('--role payer|payee is required');
  if (!values.datadir) throw new Error('--datadir is required');
  await mkdir(values.datadir, { recursive: true });
  const party = new Party(role, values.datadir);

  if (role === 'payee') {
    const port = await party.listen(values.host, Number(values.port));
    writeLine({ type: 'ready', role, pid: process.pid, port } satisfies ReadyLine);
  } else {
    const mode = values.mode as LnMode;
    if (mode !== 'balance' && mode !== 'htlc') throw new Error('--mode balance|htlc');
    const [host, port] = (values.peer ?? '').split(':');
    if (!host || !port) throw new Error('--peer host:port is required');
    await party.connect(host, Number(port), { mode, capacitySat: toBigInt(values['capacity-sat'], '--capacity-sat') });
    writeLine({ type: 'ready', role, pid: process.pid } satisfies ReadyLine);
  }

  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    let cmd: Record<string, unknown>;
    try {
      cmd = decodeJson(Buffer.from(line)) as Record<string, unknown>;
    } catch (err) {
      writeLine({ id: null, ok: false, error: (err as Error).message });
      return;
    }
    handle(party, cmd).then(
      (result) => writeLine({ id: cmd.id, ok: true, result }),
      (err: Error) => writeLine({ id: cmd.id, ok: false, error: err.message }),
    );
  });
  // The parent going away (stdin closed) ends the party.
  lines.on('close', () => void party.stop().then(() => process.exit(0)));
  process.on('SIGTERM', () => void party.stop().then(() => process.exit(0)));
}

main().catch((err: unknown) => {
  process.stderr.write(`lnmodel: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
