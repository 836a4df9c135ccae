/**
 * Builds the enclave bundle and its measurement (HOST-ONLY: uses esbuild).
 *
 * The program entry and everything it imports are bundled by esbuild into ONE script (an IIFE). The
 * measurement is the SHA-256 of exactly those bytes (the MRENCLAVE analogue), and the Platform runs
 * exactly that string in the worker: what is measured is what runs.
 *
 * Determinism: esbuild's output is a pure function of its inputs and options. Module paths appear in the
 * output relative to the entry's package root (the nearest directory with a package.json), so the same
 * checkout in another directory, or another process, measures the same. No minification: the measured
 * bundle stays readable for an auditor.
 */
import { build, version as esbuildVersion, type Plugin } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { readCachedBundle, writeCachedBundle } from './bundle-cache.ts';

/** One built enclave program. */
export interface EnclaveBundle {
  /** Absolute path of the entry file. */
  readonly entry: string;
  /** The exact JS that runs in the enclave. */
  readonly code: string;
  /** Hex SHA-256 of `code` (UTF-8). */
  readonly measurement: string;
  /** Files that went into the bundle, relative to the package root (for audits). */
  readonly inputs: readonly string[];
  /** Modules left outside the bundle (Node built-ins such as `node:crypto`), each with the input importing it. */
  readonly externals: readonly { readonly importer: string; readonly path: string }[];
  /** True when the code came from the on-disk cache (bundle-cache.ts) rather than a fresh build. */
  readonly cached: boolean;
}

const cache = new Map<string, Promise<EnclaveBundle>>();

/** This file's own bytes, hashed: the on-disk cache's key, so that changed build options rebuild. */
const BUILDER_DIGEST = createHash('sha256')
  .update(readFileSync(import.meta.filename))
  .digest('hex');

/**
 * Bundles an enclave program entry (cached per absolute entry path for the life of the process: edit the
 * code, restart the process; across processes, bundle-cache.ts keeps the last build while every input
 * file is byte for byte unchanged).
 * @throws Error with esbuild's messages if the program does not build, or if it imports a host-only module
 *   (esbuild, or enclave-sim's bundle/platform/host/index modules).
 */
export function bundleEnclave(entry: string): Promise<EnclaveBundle> {
  const abs = resolve(entry);
  let pending = cache.get(abs);
  if (!pending) {
    pending = buildBundle(abs);
    cache.set(abs, pending);
    pending.catch(() => cache.delete(abs));
  }
  return pending;
}

/**
 * The measurement a verifier should allow for the program at `entry` (same as the Platform computes).
 * @throws like `bundleEnclave`.
 */
export async function measureBundle(entry: string): Promise<string> {
  return (await bundleEnclave(entry)).measurement;
}

/** Where the on-disk cache lives: TEECHAIN_BUNDLE_CACHE (`off` disables it), else under node_modules. */
function cacheDirFor(root: string): string | null {
  const env = process.env.TEECHAIN_BUNDLE_CACHE;
  if (env === 'off') return null;
  return env ?? join(root, 'node_modules', '.cache', 'teechain-enclave');
}

async function buildBundle(entry: string, cacheDir = cacheDirFor(packageRootOf(entry))): Promise<EnclaveBundle> {
  if (!existsSync(entry)) throw new Error(`enclave entry ${entry} not found`);
  const root = packageRootOf(entry);
  const key = { entry: relative(root, entry), esbuild: esbuildVersion, builder: BUILDER_DIGEST };
  const hit = cacheDir ? readCachedBundle(cacheDir, root, key) : null;
  if (hit) return { entry, ...hit, measurement: measure(hit.code), cached: true };
  const startedAt = Date.now();
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    // IIFE, not CJS: a `new Worker(code, { eval: true })` script runs at global scope, so a CJS bundle's
    // top-level declarations would become globals (TypeBox's `function Function` replaces the real one).
    format: 'iife',
    target: 'node20',
    write: false,
    minify: false,
    sourcemap: false,
    metafile: true,
    charset: 'utf8',
    logLevel: 'silent', // errors are thrown (with their text), warnings re-emitted below
    // A WebAssembly module becomes bytes inside the bundle (see wasmInBundle): measured like the code.
    loader: { '.wasm': 'binary' },
    plugins: [hostOnlyGuard, wasmInBundle],
  });
  for (const w of result.warnings) {
    process.emitWarning(
      `${w.location ? `${w.location.file}:${w.location.line}: ` : ''}${w.text}`,
      'EnclaveBundleWarning',
    );
  }
  const out = result.outputFiles[0];
  if (!out || result.outputFiles.length !== 1) throw new Error('esbuild produced no single output file');
  const externals = Object.entries(result.metafile.inputs).flatMap(([importer, input]) =>
    // `<runtime>` is esbuild's own helper (the binary loader's decoder), inlined, not a module left out.
    input.imports.filter((i) => i.external && i.path !== '<runtime>').map((i) => ({ importer, path: i.path })),
  );
  const built = { code: out.text, inputs: Object.keys(result.metafile.inputs).sort(), externals };
  if (cacheDir) writeCachedBundle(cacheDir, root, key, built, startedAt);
  return { entry, ...built, measurement: measure(built.code), cached: false };
}

/** The measurement: SHA-256 of the exact UTF-8 bytes that run. */
const measure = (code: string) => createHash('sha256').update(code, 'utf8').digest('hex');

/** A fresh build of `entry` into `cacheDir` (null: no disk cache), bypassing the per-process cache. For tests. */
export const buildBundleUncached = (entry: string, cacheDir: string | null) => buildBundle(resolve(entry), cacheDir);

/** The nearest directory above `file` with a package.json (or the file's own directory). */
function packageRootOf(file: string): string {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return dirname(file);
  }
}

/** Fails the build when an enclave program pulls in host-side code (a mistake that would bloat or break it). */
const hostOnlyGuard: Plugin = {
  name: 'enclave-sim-host-only-guard',
  setup(b) {
    b.onResolve({ filter: /^esbuild$/ }, (args) => ({
      errors: [{ text: `esbuild is host-only and cannot be bundled into an enclave (imported by ${args.importer})` }],
    }));
    b.onLoad(
      { filter: /[\\/]enclave-sim[\\/](bundle|bundle-cache|platform|host|index|attestation|durable-file)\.ts$/ },
      (args) => ({
        errors: [
          {
            text: `${args.path} is host-only; enclave programs import enclave-sim/runtime.ts, interface.ts, quote.ts, quote-verify.ts or errors.ts`,
          },
        ],
      }),
    );
  },
};

/**
 * tiny-secp256k1 (libsecp256k1 in WebAssembly, the enclave's fast signer: src/crypto/secp256k1-wasm.ts)
 * loads its WASM under Node with readFileSync from beside its own file. Inside an enclave those bytes would
 * come from the host's disk at start-up, unmeasured, so the host could swap the signer. Its loader is
 * replaced in the bundle by one that takes the bytes from the bundle itself (esbuild's binary loader): the
 * WASM is then part of the measurement. The same shape as the package's own browser loader.
 */
const wasmInBundle: Plugin = {
  name: 'enclave-sim-wasm-in-bundle',
  setup(b) {
    b.onLoad({ filter: /[\\/]tiny-secp256k1[\\/]lib[\\/]wasm_loader\.js$/ }, (args) => ({
      loader: 'js',
      resolveDir: dirname(args.path),
      contents: [
        "import binary from './secp256k1.wasm';",
        "import { randomBytes } from 'node:crypto';",
        "import * as validate_error from './validate_error.js';",
        // The context's blinding seed, as the package's rand.js gives it (which imports `crypto` unprefixed).
        'const rand = { generateInt32: () => randomBytes(4).readInt32BE(0) };',
        'const imports = { "./rand.js": rand, "./validate_error.js": validate_error };',
        'export default new WebAssembly.Instance(new WebAssembly.Module(binary), imports).exports;',
      ].join('\n'),
    }));
  },
};
