/**
 * The enclave bundle's on-disk cache (HOST-ONLY). Every node process used to run esbuild over the same
 * few hundred files at start-up; the cache keeps the last bundle of each entry with a digest of every
 * input file's bytes, and a process whose inputs hash the same reuses the code instead of building.
 *
 * Why it cannot run stale or foreign code unnoticed: a hit needs every recorded input to exist and hash to
 * the recorded digest, the same entry and esbuild version; the measurement is always recomputed from the
 * code that runs, never read from the cache. A bundle is stored only if no input changed while it was
 * being built (mtimes older than the build's start), so a file saved mid-build is never paired with the
 * code of its previous version. Whoever can write the cache could equally edit the sources: the cache
 * adds no power over the enclave's code, and the measurement still tells peers exactly what runs.
 * Writes go to a temporary file renamed into place, so concurrent processes never read half a file.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What identifies a bundle besides its inputs' bytes. */
export interface BundleKey {
  /** The entry, relative to the package root. */
  entry: string;
  esbuild: string;
  /** Digest of the builder's own source (bundle.ts): a change to the build options is a miss. */
  builder?: string;
}

export interface CachedBuild {
  code: string;
  inputs: string[];
  externals: { importer: string; path: string }[];
}

interface CacheFile extends CachedBuild {
  format: number;
  key: BundleKey;
  /** Digest of the inputs' paths and bytes. */
  digest: string;
  /** SHA-256 of `code`: a damaged file is a miss, not a broken enclave. */
  codeSha256: string;
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** Bumped whenever the build options or this file's layout change. */
const FORMAT = 2;

const fileOf = (dir: string, key: BundleKey) =>
  join(
    dir,
    `${createHash('sha256')
      .update(JSON.stringify([FORMAT, key]))
      .digest('hex')
      .slice(0, 32)}.json`,
  );

/** Digest of the inputs' paths and bytes, or null if one cannot be read (a virtual or vanished input). */
function digestOf(root: string, inputs: readonly string[]): string | null {
  const h = createHash('sha256');
  try {
    for (const path of inputs)
      h.update(`${path}\0`)
        .update(readFileSync(join(root, path)))
        .update('\0');
  } catch {
    return null;
  }
  return h.digest('hex');
}

/** The cached build of `key`, if every input is still byte for byte what it was built from. */
export function readCachedBundle(dir: string, root: string, key: BundleKey): CachedBuild | null {
  let file: CacheFile;
  try {
    file = JSON.parse(readFileSync(fileOf(dir, key), 'utf8')) as CacheFile;
  } catch {
    return null;
  }
  if (
    file.format !== FORMAT ||
    file.key?.entry !== key.entry ||
    file.key?.esbuild !== key.esbuild ||
    file.key?.builder !== key.builder
  )
    return null;
  if (typeof file.code !== 'string' || !Array.isArray(file.inputs) || !Array.isArray(file.externals)) return null;
  if (sha256(file.code) !== file.codeSha256) return null;
  if (digestOf(root, file.inputs) !== file.digest) return null;
  return { code: file.code, inputs: file.inputs, externals: file.externals };
}

/** Stores a fresh build, unless an input changed since `startedAt` or the cache cannot be written. */
export function writeCachedBundle(
  dir: string,
  root: string,
  key: BundleKey,
  built: CachedBuild,
  startedAt: number,
): void {
  try {
    if (built.inputs.some((path) => statSync(join(root, path)).mtimeMs >= startedAt)) return;
    const digest = digestOf(root, built.inputs);
    if (!digest) return;
    mkdirSync(dir, { recursive: true });
    const target = fileOf(dir, key);
    const tmp = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    const file: CacheFile = { format: FORMAT, key, digest, codeSha256: sha256(built.code), ...built };
    writeFileSync(tmp, JSON.stringify(file));
    renameSync(tmp, target);
  } catch {
    // A cache that cannot be written only costs the next process a build.
  }
}
