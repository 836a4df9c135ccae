/**
 * Runnable embedded chain:
 *   tsx src/chain/embedded/main.ts --datadir DIR [--port N] [--host ADDR] [--memory] [--rpcuser U (--rpcpassword-file FILE | env TEECHAIN_RPC_PASSWORD)]
 * (never the password itself on the command line, which every local user can read).
 * Prints one JSON line {"rpcUrl","rpcUser","rpcPassword","height","cookieFile"} on stdout when ready;
 * diagnostics go to stderr. Shuts down cleanly (exit 0) on SIGINT/SIGTERM or the `stop` RPC (and, started with
 * TEECHAIN_STOP_WITH_PARENT=1, when its stdin closes: src/node/stop-with-parent.ts).
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { startEmbeddedChain } from './start.ts';
import { stopWithParent } from '../../node/stop-with-parent.ts';

function fail(message: string): never {
  process.stderr.write(`embedded chain: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        datadir: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        memory: { type: 'boolean', default: false },
        rpcuser: { type: 'string' },
        rpcpassword: { type: 'string' },
        'rpcpassword-file': { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  if (!values.datadir && !values.memory) fail('--datadir DIR is required (or --memory)');
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      fail(`--port must be an integer in 0..65535 (got ${values.port})`);
  }
  if (values.host !== undefined && !isIPv4(values.host))
    fail(`--host must be an IPv4 address to listen on (got ${values.host})`);
  if (values.rpcpassword !== undefined)
    fail(
      '--rpcpassword puts the password where every local user can read it (ps): use --rpcpassword-file FILE or TEECHAIN_RPC_PASSWORD',
    );
  const envPassword = process.env.TEECHAIN_RPC_PASSWORD || undefined;
  delete process.env.TEECHAIN_RPC_PASSWORD;
  let rpcPassword: string | undefined = envPassword;
  if (values['rpcpassword-file'] !== undefined) {
    try {
      rpcPassword = readFileSync(values['rpcpassword-file'], 'utf8').split(/\r?\n/, 1)[0] || undefined;
    } catch (err) {
      fail(`--rpcpassword-file: ${(err as Error).message}`);
    }
    if (rpcPassword === undefined) fail(`--rpcpassword-file ${values['rpcpassword-file']} is empty`);
  }
  if ((values.rpcuser === undefined) !== (rpcPassword === undefined))
    fail('--rpcuser and a password (--rpcpassword-file or TEECHAIN_RPC_PASSWORD) go together');

  let stopping = false;
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    stop = () => {
      if (stopping) return;
      stopping = true;
      resolve();
    };
  });
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  stopWithParent(stop);

  const chain = await startEmbeddedChain({
    memory: values.memory,
    ...(values.datadir ? { datadir: values.datadir } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(values.host !== undefined ? { host: values.host } : {}),
    ...(values.rpcuser !== undefined ? { rpcUser: values.rpcuser, rpcPassword: rpcPassword as string } : {}),
    onStopRequest: stop,
  });
  if (chain.activationBlocksMined > 0) {
    process.stderr.write(
      `embedded chain: new regtest chain, mined ${chain.activationBlocksMined} blocks to activate segwit\n`,
    );
  }
  process.stdout.write(
    JSON.stringify({
      rpcUrl: chain.rpcUrl,
      rpcUser: chain.rpcUser,
      rpcPassword: chain.rpcPassword,
      height: chain.height,
      cookieFile: chain.cookieFile,
    }) + '\n',
  );

  await stopped;
  await chain.close();
  process.stderr.write('embedded chain: stopped\n');
  process.exit(0);
}

main().catch((err) => {
  // One line for people; the stack only when asked for (TEECHAIN_DEBUG=1).
  const e = err as NodeJS.ErrnoException;
  const message =
    e?.code === 'EADDRINUSE'
      ? `RPC port already in use (${e.message.replace(/^listen EADDRINUSE: address already in use /, '')})`
      : (e?.message ?? String(err));
  process.stderr.write(`embedded chain: ${process.env.TEECHAIN_DEBUG ? (e?.stack ?? message) : message}\n`);
  process.exit(1);
});
