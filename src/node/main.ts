/**
 * Process entry of one treasury node. Prints one JSON line when ready:
 *   {"node_id", "measurement", "p2p", "rest_url", "token_file", "readonly_token_file"}
 * and shuts down cleanly on SIGINT / SIGTERM (and, started with TEECHAIN_STOP_WITH_PARENT=1, when its stdin
 * closes: src/node/stop-with-parent.ts). `teechain node start` and the network launcher run this.
 * Logs are JSON lines (pino) on stderr, or appended to --log-file, at --log-level (default info).
 * Secrets come from files or the environment, never argv (src/node/secret-file.ts): the chain's RPC
 * password from --rpc-cookie FILE, --rpc-password-file FILE or TEECHAIN_RPC_PASSWORD; a backup's join
 * token from --join-token-file FILE or TEECHAIN_JOIN_TOKEN.
 */
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { createLogger, isLogLevel, LOG_LEVELS } from '../log/logger.ts';
import { startDaemon } from './daemon.ts';
import { defaultDatadir } from './datadir.ts';
import { DEFAULT_PROMOTION_TIMEOUT_MS } from './treasury-node.ts';
import { JOIN_TOKEN_ENV, readSecretFile, RPC_PASSWORD_ENV, takeEnv } from './secret-file.ts';
import { stopWithParent } from './stop-with-parent.ts';

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      datadir: { type: 'string' },
      'rpc-url': { type: 'string' },
      'rpc-user': { type: 'string' },
      'rpc-password': { type: 'string' },
      'rpc-password-file': { type: 'string' },
      'rpc-cookie': { type: 'string' },
      'attestation-key': { type: 'string' },
      'allow-measurement': { type: 'string', multiple: true },
      'min-conf': { type: 'string' },
      'payout-address': { type: 'string' },
      'p2p-port': { type: 'string' },
      'api-port': { type: 'string' },
      host: { type: 'string' },
      'advertise-host': { type: 'string' },
      'regtest-faucet': { type: 'boolean' },
      committee: { type: 'string' },
      threshold: { type: 'string' },
      'backup-of': { type: 'string' },
      'promotion-timeout-ms': { type: 'string' },
      'p2p-handshake-timeout-ms': { type: 'string' },
      'join-token-file': { type: 'string' },
      'log-level': { type: 'string' },
      'log-file': { type: 'string' },
    },
    strict: true,
  });
  const need = (k: keyof typeof values): string => {
    const v = values[k];
    if (typeof v !== 'string' || v === '') throw new UsageError(`--${k} is required`);
    return v;
  };
  const int = (k: keyof typeof values): number | undefined => {
    const v = values[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !/^\d{1,6}$/.test(v)) throw new UsageError(`--${k} must be a whole number`);
    return Number(v);
  };
  const level = values['log-level'] ?? 'info';
  if (!isLogLevel(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const handshakeTimeoutMs = int('p2p-handshake-timeout-ms');
  if (handshakeTimeoutMs === 0) throw new UsageError('--p2p-handshake-timeout-ms must be at least 1');
  const secrets = await secretOptions(
    values['rpc-password'] as string | undefined,
    values['rpc-password-file'] as string | undefined,
    values['join-token-file'] as string | undefined,
    values['backup-of'] !== undefined,
  );
  const advertiseHost = advertisedHost(
    values.host as string | undefined,
    values['advertise-host'] as string | undefined,
  );
  const logger = createLogger({ name: 'node', level, file: values['log-file'] as string | undefined });
  const daemon = await startDaemon({
    logger,
    datadir: (values.datadir as string | undefined) ?? defaultDatadir(),
    rpcUrl: need('rpc-url'),
    rpcUser: values['rpc-user'] as string | undefined,
    ...secrets,
    rpcCookie: values['rpc-cookie'] as string | undefined,
    attestationKey: need('attestation-key'),
    allowedMeasurements: values['allow-measurement'] as string[] | undefined,
    minConfirmations: int('min-conf'),
    payoutAddress: values['payout-address'] as string | undefined,
    p2pHost: values.host as string | undefined,
    apiHost: values.host as string | undefined,
    ...(advertiseHost !== undefined ? { advertiseHost } : {}),
    p2pPort: int('p2p-port'),
    apiPort: int('api-port'),
    regtestFaucet: values['regtest-faucet'] === true,
    ...committeeOptions(int('committee'), int('threshold'), values['backup-of'] as string | undefined),
    handshakeTimeoutMs,
    promotionTimeoutMs: int('promotion-timeout-ms') ?? DEFAULT_PROMOTION_TIMEOUT_MS,
  });
  const info = await daemon.node.info();
  process.stdout.write(
    `${JSON.stringify({
      node_id: info.node_id,
      measurement: info.measurement,
      p2p: daemon.p2p,
      rest_url: daemon.restUrl,
      token_file: daemon.adminTokenFile,
      readonly_token_file: daemon.readonlyTokenFile,
    })}\n`,
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void daemon.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  stopWithParent(stop);
}

export class UsageError extends Error {}

const WILDCARD = new Set(['0.0.0.0', '::', '[::]']);
/** A host name (no port). */
const HOST_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

/**
 * The address the node names in its `rest_url` and `p2p` (what peers, committee members and clients dial):
 * `--advertise-host`, or else the one it listens on. A wildcard listen address (every interface) names no
 * one host, so it needs an advertised one.
 */
function advertisedHost(listen: string | undefined, advertise: string | undefined): string | undefined {
  if (advertise !== undefined && isIP(advertise) === 0 && !HOST_NAME.test(advertise))
    throw new UsageError('--advertise-host must be a host name or an IP address, without a port');
  if (advertise !== undefined && WILDCARD.has(advertise))
    throw new UsageError('--advertise-host must name this node, not every interface');
  if (listen !== undefined && WILDCARD.has(listen) && advertise === undefined)
    throw new UsageError(
      `--host ${listen} listens on every interface: give --advertise-host ADDR, the address peers and clients reach this node at`,
    );
  return advertise;
}

/** The RPC password and a backup's join token, from files or the environment; refused on the command line. */
async function secretOptions(
  argvPassword: string | undefined,
  passwordFile: string | undefined,
  tokenFile: string | undefined,
  backup: boolean,
) {
  const envPassword = takeEnv(RPC_PASSWORD_ENV);
  const envToken = takeEnv(JOIN_TOKEN_ENV);
  if (argvPassword !== undefined) {
    throw new UsageError(
      `--rpc-password puts the password where every local user can read it (ps): use --rpc-password-file FILE, ${RPC_PASSWORD_ENV} or --rpc-cookie FILE`,
    );
  }
  const read = (file: string, what: string) =>
    readSecretFile(file, what).catch((err: Error) => {
      throw new UsageError(err.message);
    });
  const rpcPassword = passwordFile !== undefined ? await read(passwordFile, '--rpc-password-file') : envPassword;
  const joinToken = tokenFile !== undefined ? await read(tokenFile, '--join-token-file') : envToken;
  if (joinToken !== undefined) {
    if (!backup) throw new UsageError('a join token is for a backup: it needs --backup-of');
    if (!/^[0-9a-f]{64}$/.test(joinToken))
      throw new UsageError(
        "the join token must be 64 hex characters (one line of the primary's committee-join-tokens file)",
      );
  }
  return { ...(rpcPassword !== undefined ? { rpcPassword } : {}), ...(joinToken !== undefined ? { joinToken } : {}) };
}

/** --committee N [--threshold M] for a primary, --backup-of host:port for a backup; checked before the node starts. */
function committeeOptions(size: number | undefined, threshold: number | undefined, backupOf: string | undefined) {
  if (backupOf !== undefined) {
    if (size !== undefined || threshold !== undefined)
      throw new UsageError('--backup-of takes its committee from the primary: drop --committee/--threshold');
    if (!/^[^:]+:\d{1,5}$/.test(backupOf)) throw new UsageError('--backup-of must be host:port');
    return { backupOf };
  }
  if (size === undefined) {
    if (threshold !== undefined) throw new UsageError('--threshold needs --committee');
    return {};
  }
  if (size < 1 || size > 15) throw new UsageError('--committee must be from 1 to 15 members');
  if (threshold !== undefined && (threshold < 2 || threshold > size))
    throw new UsageError(`--threshold must be from 2 to ${size}`);
  return size > 1 ? { committee: { size, ...(threshold !== undefined ? { threshold } : {}) } } : {};
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    const message =
      e?.code === 'EADDRINUSE'
        ? `port already in use (${e.message.replace(/^listen EADDRINUSE: address already in use /, '')})`
        : (e?.message ?? String(err));
    process.stderr.write(`teechain node: ${message}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  });
}
