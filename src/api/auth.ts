/**
 * Bearer tokens for the REST API: an admin token (every route) and a read-only token (GETs only),
 * random, written to the node's data dir with 0600 permissions and compared in constant time.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Access } from './routes.ts';

export interface Tokens {
  admin: string;
  readonly: string;
  adminFile: string;
  readonlyFile: string;
}

/** Loads the tokens from `dir`, creating them on first start. */
export async function loadOrCreateTokens(dir: string): Promise<Tokens> {
  const adminFile = join(dir, 'admin.token');
  const readonlyFile = join(dir, 'readonly.token');
  return { admin: await loadOrCreate(adminFile), readonly: await loadOrCreate(readonlyFile), adminFile, readonlyFile };
}

async function loadOrCreate(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const token = randomBytes(32).toString('hex');
    await writeFile(file, `${token}\n`, { mode: 0o600 });
    return token;
  }
}

/** What a request's Authorization header grants: 'admin', 'read', or null (no or wrong token). */
export function grantOf(header: string | undefined, tokens: Pick<Tokens, 'admin' | 'readonly'>): Access | null {
  const m = /^Bearer ([0-9a-f]{1,256})$/.exec(header ?? '');
  if (!m) return null;
  if (same(m[1]!, tokens.admin)) return 'admin';
  if (same(m[1]!, tokens.readonly)) return 'read';
  return null;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
