/**
 * `teechain`: the command-line client. It reads network.json (from --datadir, TEECHAIN_HOME or
 * ./.teechain) so `teechain --node alice pay bob 1000` just works, and talks to nodes only through their
 * REST APIs. Tables for people by default, --json for scripts, one-line errors, exit code 1 (2 for usage).
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AttestationService, verifyQuote, reportDataFor } from '../../enclave-sim/attestation.ts';
import { measureBundle } from '../../enclave-sim/bundle.ts';
import { defaultDatadir } from '../node/datadir.ts';
import { readSecretFile, RPC_PASSWORD_ENV, takeEnv } from '../node/secret-file.ts';
import { TREASURY_PROGRAM } from '../node/enclave-client.ts';
import { createLogger, isLogLevel, LOG_LEVELS, type LogLevel } from '../log/logger.ts';
import { dashboardForDatadir, type RunningDashboard } from '../dashboard/server.ts';
import { ApiClient, CliError, NotPrimaryError, readNetwork, type NetworkFile, type NetworkNode } from './client.ts';
import { formatSat, table } from './format.ts';
import { serveLauncherControl } from './launcher-control.ts';
import { networkUp, statusTable, type Topology } from './network.ts';

const USAGE = `usage: teechain [--datadir DIR] [--node NAME] [--json] COMMAND [ARGS]

network:
  network up [--nodes N] [--topology line|ring|star|full|random|none] [--seed N] [--deposit-sat N] [--committee N] [--base-port N] [--fresh]
             [--bitcoind-rpc-url URL --bitcoind-rpc-user U --bitcoind-rpc-password-file FILE (or env TEECHAIN_RPC_PASSWORD)]
             [--dashboard-port N | --no-dashboard] [--log-level fatal|error|warn|info|debug|trace|silent]
  network status | network down
  dashboard [--port N] [--log-level L]   the live dashboard of a running network (network up starts one too)
  node start --rpc-url URL ... (see docs/operations.md: one node on its own)
             [--committee N [--threshold M] | --backup-of HOST:PORT --join-token-file FILE]   committee primary, or backup of one
             [--promotion-timeout-ms N]   a backup takes over from a primary silent this long (default 5000, 0 never)
  committee                     the node's committee: m-of-n, chain order, members up, replication
  committee add HOST:PORT       primary: add the node at that p2p address (started with --backup-of it)
  committee remove NODE_ID      primary: remove a member (a dead one too) under a new view
  stress [--fresh …] [--duration S | --payments N] [--concurrency C | --rate R] [--pattern P] [--out FILE]
                                a verified payment workload on the whole network (teechain stress --help)

wallet (on --node, default the first node of network.json):
  getinfo | balance | deposits | channels | payments [--limit N] | peers
  deposit                       a new deposit address to fund yourself
  fund AMOUNT_SAT               a new deposit, funded from the regtest faucet and confirmed
  connect HOST:PORT|NODE        attest a peer and open a session
  open PEER [--deposit ID]... [--amount SAT]
  pay DEST AMOUNT_SAT [--channel ID] [--key IDEMPOTENCY_KEY] [--max-fee SAT]
  --follow                      pay: on a committee backup's not_primary, pay once more at the primary it names
  settle CHANNEL_ID | release DEPOSIT_ID [--address ADDR]
  attest NODE                   fetch a fresh quote and verify it here`;

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'node' && argv[1] === 'start') {
    const { main: nodeMain } = await import('../node/main.ts');
    await nodeMain(argv.slice(2));
    return -1; // keeps running
  }
  // stress has its own options; the global --datadir may come before or after the command.
  const stressAt = argv[0] === 'stress' ? 0 : argv[0] === '--datadir' && argv[2] === 'stress' ? 2 : -1;
  if (stressAt >= 0)
    return (await import('./stress.ts')).stressMain([...argv.slice(0, stressAt), ...argv.slice(stressAt + 1)]);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      datadir: { type: 'string' },
      node: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      nodes: { type: 'string' },
      topology: { type: 'string' },
      seed: { type: 'string' },
      'deposit-sat': { type: 'string' },
      'base-port': { type: 'string' },
      fresh: { type: 'boolean' },
      committee: { type: 'string' },
      'bitcoind-rpc-url': { type: 'string' },
      'bitcoind-rpc-user': { type: 'string' },
      'bitcoind-rpc-password': { type: 'string' },
      'bitcoind-rpc-password-file': { type: 'string' },
      deposit: { type: 'string', multiple: true },
      amount: { type: 'string' },
      channel: { type: 'string' },
      key: { type: 'string' },
      limit: { type: 'string' },
      address: { type: 'string' },
      'max-fee': { type: 'string' },
      follow: { type: 'boolean' },
      'dashboard-port': { type: 'string' },
      'no-dashboard': { type: 'boolean' },
      port: { type: 'string' },
      'log-level': { type: 'string' },
    },
  });
  if (values.help || positionals.length === 0) {
    process.stdout.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }
  const datadir = values.datadir ?? defaultDatadir();
  const json = values.json === true;
  const out = (human: string, data: unknown) =>
    process.stdout.write(`${json ? JSON.stringify(data, null, 2) : human}\n`);
  const [cmd, ...args] = positionals;

  if (cmd === 'network') return networkCommand(args[0], values, datadir, out);
  if (cmd === 'dashboard') return dashboardCommand(values, datadir);

  const network = await readNetwork(datadir);
  let self = pickNode(network, values.node);
  let api = await ApiClient.forNode(self);
  // One key for the request and its one follow: if the backup's host passed it on after all, the primary
  // answers the same payment instead of paying twice.
  const payKey = values.key ?? randomBytes(12).toString('hex');
  try {
    return await wallet();
  } catch (err) {
    if (!(err instanceof NotPrimaryError)) throw err;
    // Only a payment is followed: its idempotency key makes the second request safe whatever the first did.
    const primary = values.follow === true && cmd === 'pay' ? followed(network, err) : null;
    if (!primary) throw new CliError(notPrimaryLine(network, self, err));
    process.stderr.write(`${self.name} is a committee backup: sending it to its primary ${primary.name}\n`);
    self = primary;
    api = await ApiClient.forNode(self);
    return await wallet().catch((again: unknown) => {
      throw again instanceof NotPrimaryError ? new CliError(notPrimaryLine(network, self, again)) : again;
    });
  }

  async function wallet(): Promise<number> {
    switch (cmd) {
      case 'getinfo': {
        const i = await api.request('GET', '/v1/getinfo');
        out(kv(i), i);
        return 0;
      }
      case 'balance': {
        const b = await api.request('GET', '/v1/balance');
        out(
          kv({
            free_deposits_sat: formatSat(b.deposits.free_sat),
            in_channels_sat: formatSat(b.deposits.in_channels_sat),
            pending_sat: formatSat(b.deposits.pending_sat),
            channel_local_sat: formatSat(b.channels.local_balance_sat),
            channel_remote_sat: formatSat(b.channels.remote_balance_sat),
          }),
          b,
        );
        return 0;
      }
      case 'deposits': {
        const { deposits } = await api.request('GET', '/v1/deposits');
        out(
          table(
            ['deposit', 'status', 'value (sat)', 'outpoint', 'channel'],
            deposits.map((d: DepositRow) => [
              d.deposit_id,
              d.status,
              d.value_sat ? formatSat(d.value_sat) : '-',
              d.outpoint ?? '-',
              d.channel_id ? `${d.channel_id.slice(0, 12)}…` : '-',
            ]),
          ),
          deposits,
        );
        return 0;
      }
      case 'deposit': {
        const d = await api.request('POST', '/v1/deposits', {});
        out(
          `deposit ${d.deposit_id}: send funds to ${d.address}, then: POST /v1/deposits/${d.deposit_id}/funded {txid, vout}`,
          d,
        );
        return 0;
      }
      case 'fund': {
        const amount = satArg(args[0], 'AMOUNT_SAT');
        if (!json)
          process.stderr.write(
            `funding a deposit of ${formatSat(amount)} sat from the faucet and waiting for confirmation…\n`,
          );
        const d = await api.request('POST', '/v1/deposits', { amount_sat: amount, fund: true });
        out(`deposit ${d.deposit_id}: ${formatSat(d.value_sat)} sat, ${d.status}, ${d.outpoint}`, d);
        return 0;
      }
      case 'committee': {
        if (args[0] === 'add') {
          if (!args[1]) throw new CliError('usage: teechain committee add HOST:PORT');
          const r = await api.request('POST', '/v1/committee/members', { address: args[1] });
          out(`added: the committee is ${r.members.length} members in epoch ${r.epoch}`, r);
          return 0;
        }
        if (args[0] === 'remove') {
          if (!args[1]) throw new CliError('usage: teechain committee remove NODE_ID');
          const r = await api.request('DELETE', `/v1/committee/members/${encodeURIComponent(args[1])}`);
          out(`removed: the committee is ${r.members.length} members in epoch ${r.epoch}`, r);
          return 0;
        }
        const c = await api.request('GET', '/v1/committee');
        out(
          `${self.name}: ${c.role} (member ${c.index}) of a ${c.threshold}-of-${c.size} committee ${c.treasury_id.slice(0, 16)}…, view ${c.epoch}, update ${c.seq} (acknowledged: ${c.acked_seq})\n${table(
            ['#', 'node', 'node id', 'address', 'REST URL', 'connected'],
            c.members.map((m: MemberRow, i: number) => [
              String(i),
              nodeName(network, m.node_id),
              `${m.node_id.slice(0, 16)}…`,
              m.address,
              m.rest_url ?? '-',
              m.connected ? 'yes' : 'no',
            ]),
          )}`,
          c,
        );
        return 0;
      }
      case 'peers': {
        const { peers } = await api.request('GET', '/v1/peers');
        out(
          table(
            ['peer id', 'address'],
            peers.map((p: PeerRow) => [p.peer_id, p.address ?? '(dialled us)']),
          ),
          peers,
        );
        return 0;
      }
      case 'connect': {
        const target = args[0] ?? usage('connect needs HOST:PORT or a node name');
        const address = network.nodes.find((n) => n.name === target)?.p2p ?? target;
        const r = await api.request('POST', '/v1/peers', { address });
        out(`connected to ${r.peer_id} at ${address} (attested)`, r);
        return 0;
      }
      case 'open': {
        const peer = resolveNodeId(network, args[0] ?? usage('open needs a peer (name or node id)'));
        const body: Record<string, unknown> = { peer_id: peer };
        if (values.deposit) body.deposit_ids = values.deposit;
        else if (values.amount) body.amount_sat = satArg(values.amount, '--amount');
        const ch = await api.request('POST', '/v1/channels', body);
        out(
          `channel ${ch.channel_id} open: local ${formatSat(ch.local_balance_sat)} sat, remote ${formatSat(ch.remote_balance_sat)} sat`,
          ch,
        );
        return 0;
      }
      case 'channels': {
        const { channels } = await api.request('GET', '/v1/channels');
        out(
          table(
            ['channel', 'peer', 'status', 'local (sat)', 'remote (sat)', 'settlement'],
            channels.map((c: ChannelRow) => [
              c.channel_id,
              peerName(network, c.peer_id),
              c.status,
              formatSat(c.local_balance_sat),
              formatSat(c.remote_balance_sat),
              c.settlement_txid ?? '-',
            ]),
          ),
          channels,
        );
        return 0;
      }
      case 'pay': {
        const dest = resolveNodeId(network, args[0] ?? usage('pay needs DEST and AMOUNT_SAT'));
        const amount = satArg(args[1], 'AMOUNT_SAT');
        const body: Record<string, unknown> = {
          dest,
          amount_sat: amount,
          idempotency_key: payKey,
        };
        if (values.channel) body.channel_id = values.channel;
        if (values['max-fee'] !== undefined) body.max_fee_sat = satArg(values['max-fee'], '--max-fee');
        const p = await api.request('POST', '/v1/payments', body);
        const via =
          Array.isArray(p.route) && p.route.length > 2
            ? ` via ${p.route
                .slice(1, -1)
                .map((id: string) => peerName(network, id))
                .join(', ')} (fee ${formatSat(p.fee_sat ?? 0)} sat)`
            : '';
        out(
          `payment ${p.payment_id}: ${formatSat(p.amount_sat)} sat to ${peerName(network, dest)}${via} ${p.status}`,
          p,
        );
        return p.status === 'failed' ? 1 : 0;
      }
      case 'payments': {
        const limit = values.limit ? satArg(values.limit, '--limit') : 20;
        const r = await api.request('GET', `/v1/payments?limit=${limit}`);
        out(
          table(
            ['payment', 'direction', 'amount (sat)', 'status', 'channel'],
            r.payments.map((p: PaymentRow) => [
              p.payment_id,
              p.direction,
              formatSat(p.amount_sat),
              p.status,
              `${p.channel_id.slice(0, 12)}…`,
            ]),
          ),
          r,
        );
        return 0;
      }
      case 'settle': {
        const id = args[0] ?? usage('settle needs CHANNEL_ID');
        const r = await api.request('POST', `/v1/channels/${id}/settle`, {});
        out(
          `settled: txid ${r.txid}, local ${formatSat(r.local_balance_sat)} sat, remote ${formatSat(r.remote_balance_sat)} sat, fee ${formatSat(r.fee_sat)} sat (paid by us)`,
          r,
        );
        return 0;
      }
      case 'release': {
        const id = args[0] ?? usage('release needs DEPOSIT_ID');
        const r = await api.request(
          'POST',
          `/v1/deposits/${id}/release`,
          values.address ? { address: values.address } : {},
        );
        out(`released ${r.deposit_id}: txid ${r.txid}, fee ${formatSat(r.fee_sat)} sat`, r);
        return 0;
      }
      case 'attest': {
        const target = pickNode(network, args[0] ?? self.name);
        return attest(target, datadir, out);
      }
      default:
        return usage(`unknown command ${cmd}`);
    }
  }
}

/**
 * The node of network.json that a not_primary answer names, if network.json lists it at that very REST
 * URL: the follow uses that node's own token from its own file, never the backup's, and goes only where
 * network.json already says that node is.
 */
function followed(network: NetworkFile, err: NotPrimaryError): NetworkNode | null {
  const p = err.primary;
  if (!p) return null;
  const all = network.nodes.flatMap((x) => [x, ...(x.backups ?? [])]);
  return all.find((x) => x.nodeId === p.node_id && x.restUrl === p.rest_url) ?? null;
}

/** One line naming the primary to use instead, by its --node name when network.json lists it. */
function notPrimaryLine(network: NetworkFile, self: NetworkNode, err: NotPrimaryError): string {
  const p = err.primary;
  if (!p) return `${self.name} is a committee backup and does not know its primary yet; try again shortly`;
  const all = network.nodes.flatMap((x) => [x, ...(x.backups ?? [])]);
  const known = all.find((x) => x.nodeId === p.node_id);
  return `not_primary: ${self.name} is a committee backup; its primary is ${p.rest_url ?? `${p.node_id.slice(0, 16)}…`}${known ? ` (run it again with --node ${known.name})` : ''}`;
}

async function networkCommand(
  sub: string | undefined,
  values: Record<string, unknown>,
  datadir: string,
  out: (h: string, d: unknown) => void,
): Promise<number> {
  if (sub === 'status') {
    const network = await readNetwork(datadir);
    out(await statusTable(network), network);
    return 0;
  }
  if (sub === 'down') {
    let pid: number;
    try {
      pid = Number(await readFile(join(datadir, 'network.pid'), 'utf8'));
    } catch {
      throw new CliError(`no running network at ${datadir}`);
    }
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      throw new CliError(`network process ${pid} is not running`);
    }
    out(`stopping the network (pid ${pid})`, { pid });
    return 0;
  }
  if (sub !== 'up') return usage('network takes up, down or status');
  const int = (k: string, d: number) => (values[k] === undefined ? d : satArg(values[k] as string, `--${k}`));
  const topology = (values.topology as string | undefined) ?? 'line';
  if (!['line', 'ring', 'star', 'full', 'random', 'none'].includes(topology))
    return usage('--topology is line, ring, star, full, random or none');
  // A random topology's channels are fixed by the seed (given, or drawn and recorded in network.json).
  const topologySeed = int('seed', Math.floor(Math.random() * 2 ** 31));
  const url = values['bitcoind-rpc-url'] as string | undefined;
  if (values['bitcoind-rpc-password'] !== undefined)
    return usage(
      '--bitcoind-rpc-password puts the password where every local user can read it (ps): use --bitcoind-rpc-password-file FILE or TEECHAIN_RPC_PASSWORD',
    );
  const passwordFile = values['bitcoind-rpc-password-file'] as string | undefined;
  const rpcPassword =
    passwordFile !== undefined
      ? await readSecretFile(passwordFile, '--bitcoind-rpc-password-file')
      : (takeEnv(RPC_PASSWORD_ENV) ?? '');
  const log = (line: string) => void process.stderr.write(`${line}\n`);
  const running = await networkUp({
    datadir,
    nodes: int('nodes', 3),
    topology: topology as Topology,
    topologySeed,
    depositSat: int('deposit-sat', 1_000_000),
    committee: int('committee', 1),
    basePort: values['base-port'] === undefined ? 18_400 : Number(values['base-port']),
    fresh: values.fresh === true,
    ...(url ? { bitcoind: { rpcUrl: url, rpcUser: String(values['bitcoind-rpc-user'] ?? ''), rpcPassword } } : {}),
    log,
    logLevel: logLevelOf(values),
  });
  // How `teechain stress --chaos` kills and restarts this network's processes (launcher-control.ts).
  const control = await serveLauncherControl(datadir, running, log).catch((err: Error) => {
    log(`control socket: not served (${err.message}); --chaos cannot reach this network`);
    return null;
  });
  let dashboard: RunningDashboard | null = null;
  if (values['no-dashboard'] !== true) {
    // Next to the nodes' ports by default (18480), any free port when the network takes any (--base-port 0).
    const base = values['base-port'] === undefined ? 18_400 : Number(values['base-port']);
    const port = values['dashboard-port'] !== undefined ? int('dashboard-port', 0) : base === 0 ? 0 : base + 80;
    const logger = createLogger({ name: 'dashboard', level: logLevelOf(values), file: join(datadir, 'dashboard.log') });
    dashboard = await dashboardForDatadir(datadir, { port, logger }).catch((err: Error) => {
      process.stderr.write(`dashboard: not started (${err.message}); the network runs without it\n`);
      return null;
    });
  }
  out(
    `\n${await statusTable(running.network)}\n\nnetwork.json: ${join(datadir, 'network.json')}\nchain RPC: ${running.network.chain.rpcUrl}\n${dashboard ? `dashboard: ${dashboard.url}\n` : ''}Ctrl-C stops the network; \`npm start\` again resumes it (--fresh starts over).`,
    { ...running.network, dashboard_url: dashboard?.url ?? null },
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    void running.died.then((name) => {
      process.stderr.write(`${name} exited unexpectedly; stopping the network\n`);
      resolve();
    });
  });
  process.stderr.write('stopping…\n');
  await control?.close();
  await dashboard?.stop();
  await running.stop();
  process.stderr.write('stopped.\n');
  return 0;
}

/** `teechain dashboard`: the dashboard of an already running network, until Ctrl-C. */
async function dashboardCommand(values: Record<string, unknown>, datadir: string): Promise<number> {
  const port = values.port === undefined ? 18_480 : satArg(values.port as string, '--port');
  const logger = createLogger({ name: 'dashboard', level: logLevelOf(values) });
  const dashboard = await dashboardForDatadir(datadir, { port, logger });
  process.stdout.write(`dashboard: ${dashboard.url}\nCtrl-C stops it (the network keeps running).\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await dashboard.stop();
  return 0;
}

function logLevelOf(values: Record<string, unknown>): LogLevel {
  const v = values['log-level'] ?? 'info';
  if (!isLogLevel(v)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  return v;
}

async function attest(target: NetworkNode, datadir: string, out: (h: string, d: unknown) => void): Promise<number> {
  const nonce = randomBytes(32).toString('hex');
  const api = await ApiClient.forNode(target);
  const r = await api.request('GET', `/v1/attestation?nonce=${nonce}`);
  // The verifier's own expectations: the trust anchor it was given and the measurement of the code it trusts.
  const service = await AttestationService.load(join(datadir, 'attestation.key'));
  const expected = await measureBundle(TREASURY_PROGRAM);
  const v = verifyQuote(r.quote, {
    trustAnchor: service.trustAnchor,
    allowedMeasurements: [expected],
    expectedNonce: nonce,
    expectedReportData: reportDataFor(Buffer.from(r.node_id, 'hex')),
  });
  out(
    `${target.name}: quote verified — measurement ${v.measurement} (the treasury program built here), node id ${r.node_id}, fresh nonce`,
    { verified: true, ...v, node_id: r.node_id },
  );
  return 0;
}

function pickNode(network: NetworkFile, name: string | undefined): NetworkNode {
  // Committee backups (alice-b1, …) are nodes too: settle or inspect from them when their primary is down.
  const all = network.nodes.flatMap((x) => [x, ...(x.backups ?? [])]);
  const n = name === undefined ? network.nodes[0] : all.find((x) => x.name === name || x.nodeId === name);
  if (!n) throw new CliError(`no node ${name} in network.json (nodes: ${all.map((x) => x.name).join(', ')})`);
  return n;
}

function resolveNodeId(network: NetworkFile, nameOrId: string): string {
  if (/^[0-9a-f]{66}$/.test(nameOrId)) return nameOrId;
  const n = network.nodes.find((x) => x.name === nameOrId);
  if (!n) throw new CliError(`unknown node ${nameOrId}: give a name from network.json or a 66-hex node id`);
  return n.treasuryId ?? n.nodeId; // a committee is paid by its identity, whichever member is primary
}

/** The fields of each REST list answer that the CLI's tables show (the --json output prints the answer whole). */
interface DepositRow {
  deposit_id: string;
  status: string;
  value_sat?: string | null;
  outpoint?: string | null;
  channel_id?: string | null;
}
interface MemberRow {
  node_id: string;
  address: string;
  rest_url?: string;
  connected: boolean;
}
interface PeerRow {
  peer_id: string;
  address?: string | null;
}
interface ChannelRow {
  channel_id: string;
  peer_id: string;
  status: string;
  local_balance_sat: string;
  remote_balance_sat: string;
  settlement_txid?: string | null;
}
interface PaymentRow {
  payment_id: string;
  direction: string;
  amount_sat: number;
  status: string;
  channel_id: string;
}

/** A member's name in network.json (alice-b1, …), or its short node id. */
function nodeName(network: NetworkFile, id: string): string {
  const all = network.nodes.flatMap((x) => [x, ...(x.backups ?? [])]);
  return all.find((n) => n.nodeId === id)?.name ?? `${id.slice(0, 12)}…`;
}

function peerName(network: NetworkFile, id: string): string {
  return network.nodes.find((n) => n.nodeId === id || n.treasuryId === id)?.name ?? `${id.slice(0, 12)}…`;
}

function satArg(v: string | undefined, what: string): number {
  if (v === undefined || !/^[0-9]{1,16}$/.test(v) || !Number.isSafeInteger(Number(v)))
    throw new UsageError(`${what} must be a whole number`);
  return Number(v);
}

function kv(o: Record<string, unknown>): string {
  const keys = Object.keys(o);
  const w = Math.max(...keys.map((k) => k.length));
  return keys
    .map((k) => `${k.padEnd(w)}  ${typeof o[k] === 'object' ? JSON.stringify(o[k]) : String(o[k])}`)
    .join('\n');
}

class UsageError extends CliError {}

function usage(msg: string): never {
  throw new UsageError(msg);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`teechain: ${msg}\n`);
    if (err instanceof UsageError) process.stderr.write('run `teechain --help` for usage\n');
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
