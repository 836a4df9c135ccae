/**
 * Child processes that announce readiness with one JSON line on stdout (the chain, treasury nodes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { STOP_WITH_PARENT_ENV } from '../node/stop-with-parent.ts';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CHAIN_MAIN = join(SRC, 'chain/embedded/main.ts');
export const NODE_MAIN = join(SRC, 'node/main.ts');

export interface ReadyProcess<T> {
  proc: ChildProcess;
  ready: T;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Runs a TypeScript entry with tsx and resolves with its first stdout line, parsed as JSON.
 * `env` is added to this process's environment: the way to hand it secrets (argv is world-readable).
 * @throws Error with the process's stderr if it exits (or takes longer than `timeoutMs`) before that.
 */
export async function spawnReady<T>(
  entry: string,
  args: string[],
  timeoutMs = 120_000,
  env: Record<string, string> = {},
  /** Called with the child as soon as it exists (a test suite tracks it, to stop it whatever fails). */
  onSpawn?: (proc: ChildProcess) => void,
  /**
   * A process group of its own, out of reach of a Ctrl-C typed in this process's terminal, and stdin a pipe
   * from this process: the child stops when it closes, so it ends with this process however that ends
   * (src/node/stop-with-parent.ts; the chain and node entries do so).
   */
  ownGroup = false,
  /** A command that runs the process for us (`ip netns exec NS`): it must exec it, keeping its pid. */
  prefix: string[] = [],
): Promise<ReadyProcess<T>> {
  const command = [...prefix, process.execPath, '--import', 'tsx', entry, ...args];
  const proc = spawn(command[0]!, command.slice(1), {
    stdio: [ownGroup ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env, ...(ownGroup ? { [STOP_WITH_PARENT_ENV]: '1' } : {}) },
    detached: ownGroup,
  });
  proc.stdin?.on('error', () => undefined); // nothing is written: a child gone first is no error here
  onSpawn?.(proc);
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${entry} was not ready after ${timeoutMs} ms: ${err.trim()}`));
    }, timeoutMs);
    createInterface({ input: proc.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(err.trim() || `${entry} exited (${code ?? signal})`));
    });
  });
  return {
    proc,
    ready: JSON.parse(line) as T,
    stderr: () => err,
    stop: (signal: NodeJS.Signals = 'SIGTERM') => stopProcess(proc, signal),
  };
}

/** Signals the process and waits for it to exit (SIGKILL after 10 s). */
export async function stopProcess(proc: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
