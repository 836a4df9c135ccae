/**
 * Secrets on the host's disk (RPC passwords, join tokens, network.json) and how they reach a process.
 *
 * A command line is readable by every local user (/proc/<pid>/cmdline, `ps`), so secrets never travel in
 * argv: a process gets them from a 0600 file or from its environment (/proc/<pid>/environ is the owner's
 * only). Files that hold one are 0600 even when they already existed with a wider mode, in 0700
 * directories where we create them.
 */
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { utf8ToBytes } from '../../enclave-sim/encoding.ts';
import { writeFileDurably } from '../../enclave-sim/durable-file.ts';

/** Where a committee primary's host writes the join tokens its enclave gave out, one per line. */
export const JOIN_TOKENS_FILE = 'committee-join-tokens';

/** Environment variables that carry secrets to our processes (each is removed from the environment once read). */
export const RPC_PASSWORD_ENV = 'TEECHAIN_RPC_PASSWORD';
export const JOIN_TOKEN_ENV = 'TEECHAIN_JOIN_TOKEN';

/** Creates `dir` (and missing parents) as 0700; an existing directory is left as it is. */
export async function makePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/** Replaces `file` atomically with `text`, mode 0600 whatever the umask or a previous file's mode. */
export async function writeSecretFile(file: string, text: string): Promise<void> {
  await writeFileDurably(file, utf8ToBytes(text), 0o600);
  await chmod(file, 0o600);
}

/** The first line of a secret file, without its line ending. @throws Error naming `what` if it is empty. */
export async function readSecretFile(file: string, what: string): Promise<string> {
  const line = (await readFile(file, 'utf8')).split(/\r?\n/, 1)[0] ?? '';
  if (line === '') throw new Error(`${what} file ${file} is empty`);
  return line;
}

/** Reads and removes a secret from the environment, so no child process inherits it. */
export function takeEnv(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env[name];
  delete env[name];
  return v === '' ? undefined : v;
}

export async function writeJoinTokens(datadir: string, tokens: string[]): Promise<void> {
  await writeSecretFile(join(datadir, JOIN_TOKENS_FILE), `${tokens.join('\n')}\n`);
}

/** A primary's join tokens from its data dir (empty when it has none). */
export async function readJoinTokens(datadir: string): Promise<string[]> {
  const text = await readFile(join(datadir, JOIN_TOKENS_FILE), 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}
