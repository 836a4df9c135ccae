/**
 * Loading LDK: the `lightningdevkit` package is rust-lightning compiled to WASM with generated TypeScript
 * bindings. Its module holds one WASM instance per process, which must be initialised before any LDK
 * object is made.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import * as ldk from 'lightningdevkit';

let ready: Promise<void> | null = null;

/** The path of the package's .wasm binary (resolved like an import, so it follows node_modules). */
export function ldkWasmPath(): string {
  return createRequire(import.meta.url).resolve('lightningdevkit/liblightningjs.wasm');
}

/** Initialises the WASM instance once per process; later calls wait for the first. */
export function initLdk(): Promise<void> {
  ready ??= readFile(ldkWasmPath()).then((bin) => ldk.initializeWasmFromBinary(new Uint8Array(bin)));
  return ready;
}
