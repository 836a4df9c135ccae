/**
 * `teechain network up` as a user runs it, for the tests of the whole local network: the launcher in its
 * own process group, the CLI, and a curl-like REST call with a node's admin token from network.json.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { NetworkFile } from '../../src/cli/client.ts';
import { spawnTracked, waitUntil } from './network.ts';

export const CLI = join(import.meta.dirname, '../../src/cli/main.ts');
const run = promisify(execFile);

export function networkUp(datadir: string, extra: string[], readyMs = 180_000) {
  // A process group of its own: if it must be SIGKILLed, its chain and nodes go with it.
  const proc = spawnTracked(
    process.execPath,
    ['--import', 'tsx', CLI, '--datadir', datadir, 'network', 'up', '--deposit-sat', '500000', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  proc.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const ready = waitUntil(
    () => stdout.includes('Ctrl-C stops the network') || proc.exitCode !== null,
    readyMs,
    'network up',
  ).then(() => {
    if (proc.exitCode !== null) throw new Error(`network up exited ${proc.exitCode}: ${stderr}`);
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, ready, exited, out: () => stdout, err: () => stderr };
}

/** The CLI's stdout and stderr; rejects (with both, and its exit code) when it exits non-zero. */
export async function cliRun(datadir: string, ...args: string[]) {
  return run(process.execPath, ['--import', 'tsx', CLI, '--datadir', datadir, ...args]);
}

export async function cli(datadir: string, ...args: string[]) {
  return (await cliRun(datadir, ...args)).stdout;
}

/** The REST answer's status and JSON body, whatever the status. */
export async function rest(
  n: Pick<NetworkFile['nodes'][number], 'restUrl' | 'tokenFile'>,
  method: string,
  path: string,
  body?: unknown,
) {
  const token = (await readFile(n.tokenFile, 'utf8')).trim();
  const res = await fetch(`${n.restUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the REST answers have no per-route types to derive T from yet: tests read them as the API documents
  return { status: res.status, body: (await res.json()) as any };
}

/** The JSON body of a successful REST answer; throws with the error body otherwise. */
export async function api(
  n: Pick<NetworkFile['nodes'][number], 'restUrl' | 'tokenFile'>,
  method: string,
  path: string,
  body?: unknown,
) {
  const r = await rest(n, method, path, body);
  if (r.status >= 400) throw new Error(`${method} ${path}: ${JSON.stringify(r.body)}`);
  return r.body;
}
