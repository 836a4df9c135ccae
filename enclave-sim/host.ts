/**
 * The untrusted host's side of an enclave: the sealed-blob store and the handle it calls ecalls through
 * (HOST-ONLY). Handles are made by `Platform.launch`.
 */
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { EnclaveCallError } from './errors.ts';
import { interfaceFingerprint, type EnclaveInterface } from './interface.ts';
import { BUILTIN_OCALLS, checkEnclaveToHost, type EnclaveToHost, type HostToEnclave } from './messages.ts';
import { readFileIfExists, SlotFile, writeFileDurably } from './durable-file.ts';

export { EnclaveCallError } from './errors.ts';

/** Where the host keeps an enclave's latest sealed blob. `store` must be durable when it resolves. */
export interface SealedStore {
  store(blob: Uint8Array): Promise<void>;
  load(): Promise<Uint8Array | null>;
}

/** A SealedStore in one file, replaced atomically (write tmp, fsync, rename, fsync dir), mode 0600. */
export class FileSealedStore implements SealedStore {
  readonly file: string;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(file: string) {
    this.file = resolve(file);
  }

  /** @throws the fs error; the file then still holds the previous blob. */
  store(blob: Uint8Array): Promise<void> {
    // Serialized so a slow earlier write can never rename over a later one.
    const run = this.#chain.then(async () => {
      await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
      await writeFileDurably(this.file, blob, 0o600);
    });
    this.#chain = run.catch(() => {});
    return run;
  }

  /** The stored blob, or null if none was ever stored. @throws fs errors other than "not found". */
  async load(): Promise<Uint8Array | null> {
    await this.#chain;
    return readFileIfExists(this.file);
  }
}

/**
 * A SealedStore in a two-slot file (`<file>.a`, `<file>.b`; see durable-file.ts SlotFile): one positioned
 * write + fdatasync per blob instead of an atomic file replacement, for the stores written on every
 * commit (the treasury's). Same guarantee: after a crash the newest completely written blob is read.
 */
export class SlotSealedStore implements SealedStore {
  readonly file: string;
  #slots: Promise<SlotFile> | null = null;

  constructor(file: string) {
    this.file = resolve(file);
  }

  async store(blob: Uint8Array): Promise<void> {
    await (await this.#open()).write(blob);
  }

  async load(): Promise<Uint8Array | null> {
    return (await this.#open()).read();
  }

  async close(): Promise<void> {
    if (this.#slots) await (await this.#slots).close();
    this.#slots = null;
  }

  #open(): Promise<SlotFile> {
    this.#slots ??= mkdir(dirname(this.file), { recursive: true, mode: 0o700 }).then(() =>
      SlotFile.open(this.file, 0o600),
    );
    return this.#slots;
  }
}

/** The host's implementation of a program's ocalls. */
export type OcallHandlers<I extends EnclaveInterface> = {
  [K in keyof I['ocalls']]: (
    args: Static<I['ocalls'][K]['args']>,
  ) => Promise<Static<I['ocalls'][K]['result']>> | Static<I['ocalls'][K]['result']>;
};

/**
 * A running enclave, as the host sees it: a measurement and a way to call in. It holds no reference to
 * the worker or to anything inside the enclave (everything is in closures).
 */
export interface EnclaveHandle<I extends EnclaveInterface> {
  readonly measurement: string;
  /**
   * Calls an ecall. Args are checked here first, the enclave checks them again, and the result is checked
   * against its schema on arrival.
   * @throws EnclaveCallError with the enclave's code, or 'unknown_ecall' / 'malformed_args' (refused before
   *   sending), 'invalid_result', 'enclave_terminated'.
   */
  ecall<K extends keyof I['ecalls'] & string>(
    name: K,
    args: Static<I['ecalls'][K]['args']>,
  ): Promise<Static<I['ecalls'][K]['result']>>;
  /**
   * Sends an ecall with NO host-side checks, as a hostile host could (tests, fuzzing). The result is
   * returned unchecked.
   * @throws EnclaveCallError like `ecall`; 'malformed_args' if the args cannot be structured-cloned.
   */
  ecallUnchecked(name: string, args: unknown): Promise<unknown>;
  /**
   * Posts an arbitrary message on the enclave's channel, as a hostile host could. The enclave answers a
   * malformed one with a protocol error (see `LaunchOptions.onProtocolError`).
   * @throws DataCloneError if `message` cannot be structured-cloned.
   */
  postRaw(message: unknown): void;
  /** Stops the enclave (like powering it off); pending ecalls reject with 'enclave_terminated'. */
  terminate(): Promise<void>;
}

/** Host-side options of a launch (the Platform adds its own). */
export interface HostChannelOptions<I extends EnclaveInterface> {
  iface: I;
  ocalls: OcallHandlers<I>;
  store: SealedStore;
  /** Debug enclaves report the message of an uncaught exception when they crash. */
  debug?: boolean;
  /** Called with each protocol error the enclave reports (answers to malformed raw messages). */
  onProtocolError?: (err: EnclaveCallError) => void;
  /** Called when the handler of a one-way ocall fails (nobody else hears of it). */
  onOcallError?: (name: string, err: Error) => void;
}

interface CompiledCall {
  args: TypeCheck<TSchema>;
  result: TypeCheck<TSchema>;
  oneway: boolean;
}

const compiledByIface = new WeakMap<
  EnclaveInterface,
  { ecalls: Map<string, CompiledCall>; ocalls: Map<string, CompiledCall>; fingerprint: string }
>();

function compiled(iface: EnclaveInterface) {
  let c = compiledByIface.get(iface);
  if (!c) {
    const compile = (calls: EnclaveInterface['ecalls']) =>
      new Map(
        Object.entries(calls).map(([n, s]) => [
          n,
          { args: TypeCompiler.Compile(s.args), result: TypeCompiler.Compile(s.result), oneway: s.oneway === true },
        ]),
      );
    c = { ecalls: compile(iface.ecalls), ocalls: compile(iface.ocalls), fingerprint: interfaceFingerprint(iface) };
    compiledByIface.set(iface, c);
  }
  return c;
}

const CODE = /^[a-z][a-z0-9_]{0,127}$/;

/**
 * Wires the host side to a freshly created enclave worker (used by Platform.launch). `ready` resolves
 * when the enclave's `init` finished and its interface matches `opts.iface`.
 * @internal
 */
export function connectHost<I extends EnclaveInterface>(
  worker: Worker,
  measurement: string,
  opts: HostChannelOptions<I>,
): { handle: EnclaveHandle<I>; ready: Promise<void> } {
  const calls = compiled(opts.iface);
  const pending = new Map<
    number,
    { check: TypeCheck<TSchema> | null; resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  let nextId = 1;
  let terminated: EnclaveCallError | null = null;
  let settleReady: { resolve: () => void; reject: (e: Error) => void } | null = null;
  const ready = new Promise<void>((resolve, reject) => {
    settleReady = { resolve, reject };
  });

  const post = (msg: HostToEnclave) => worker.postMessage(msg);

  function send(name: string, args: unknown, check: TypeCheck<TSchema> | null): Promise<unknown> {
    if (terminated) return Promise.reject(terminated);
    const id = nextId++;
    return new Promise((resolve, reject) => {
      try {
        post({ t: 'ecall', id, name, args });
      } catch {
        reject(new EnclaveCallError('malformed_args', `ecall ${name}: args cannot be sent (not structured-cloneable)`));
        return;
      }
      pending.set(id, { check, resolve, reject });
    });
  }

  async function answerOcall(id: number, name: string, args: unknown): Promise<void> {
    try {
      const result = await runOcall(name, args);
      if (!terminated) post({ t: 'ocall_result', id, result });
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown };
      const code = typeof e?.code === 'string' && CODE.test(e.code) ? e.code : 'ocall_failed';
      const message = typeof e?.message === 'string' ? e.message.slice(0, 1000) : 'ocall failed';
      if (!terminated) post({ t: 'ocall_error', id, code, message });
    }
  }

  async function runOcall(name: string, args: unknown): Promise<unknown> {
    if (name === BUILTIN_OCALLS.storeSealed) {
      const blob = (args as { blob?: unknown } | null)?.blob;
      if (!(blob instanceof Uint8Array))
        throw new EnclaveCallError('malformed_ocall_args', 'store: blob must be bytes');
      await opts.store.store(blob);
      return null;
    }
    if (name === BUILTIN_OCALLS.loadSealed) return opts.store.load();
    const spec = calls.ocalls.get(name);
    const handler = (opts.ocalls as Record<string, (a: unknown) => unknown>)[name];
    if (!spec || typeof handler !== 'function' || !Object.prototype.hasOwnProperty.call(opts.ocalls, name)) {
      throw new EnclaveCallError('unknown_ocall', `host has no ocall ${name}`);
    }
    if (!spec.args.Check(args))
      throw new EnclaveCallError('malformed_ocall_args', `ocall ${name}: args fail their schema`);
    const result = await handler(args);
    if (!spec.result.Check(result))
      throw new EnclaveCallError('invalid_ocall_result', `ocall ${name}: host handler result fails its schema`);
    return result;
  }

  worker.on('message', (msg: unknown) => {
    if (!checkEnclaveToHost.Check(msg)) return; // cannot come from the trusted runtime; ignore
    const m: EnclaveToHost = msg;
    switch (m.t) {
      case 'ready':
        if (m.fingerprint !== calls.fingerprint) {
          settleReady?.reject(
            new EnclaveCallError(
              'interface_mismatch',
              'the enclave program was built with a different interface than the one given to launch',
            ),
          );
        } else settleReady?.resolve();
        return;
      case 'init_failed':
        settleReady?.reject(new EnclaveCallError(m.code, m.message));
        return;
      case 'ecall_result':
      case 'ecall_error': {
        const p = pending.get(m.id);
        if (!p) return;
        pending.delete(m.id);
        if (m.t === 'ecall_error') p.reject(new EnclaveCallError(m.code, m.message));
        else if (p.check && !p.check.Check(m.result))
          p.reject(new EnclaveCallError('invalid_result', 'enclave result fails its schema'));
        else p.resolve(m.result);
        return;
      }
      case 'ocall':
        void answerOcall(m.id, m.name, m.args);
        return;
      case 'ocall_oneway':
        if (calls.ocalls.get(m.name)?.oneway !== true) {
          opts.onOcallError?.(
            m.name,
            new EnclaveCallError('unknown_ocall', `no one-way ocall named ${m.name.slice(0, 64)}`),
          );
          return;
        }
        runOcall(m.name, m.args).catch((err: unknown) =>
          opts.onOcallError?.(m.name, err instanceof Error ? err : new Error(String(err))),
        );
        return;
      case 'protocol_error':
        opts.onProtocolError?.(new EnclaveCallError(m.code, m.message));
        return;
    }
  });

  const onGone = (why: string) => {
    if (terminated) return;
    terminated = new EnclaveCallError('enclave_terminated', why);
    settleReady?.reject(terminated);
    for (const p of pending.values()) p.reject(terminated);
    pending.clear();
  };
  worker.on('error', (err) => {
    // Like a real enclave crash, the host learns that it crashed, not why (the message could hold secrets),
    // unless the enclave runs in debug mode.
    const detail = opts.debug
      ? `: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`
      : ' (launch with debug: true to see why)';
    onGone(`the enclave crashed${detail}`);
  });
  worker.on('exit', (code) => onGone(`the enclave exited (code ${code})`));
  void ready.then(
    () => {
      settleReady = null;
    },
    () => {
      settleReady = null;
    },
  );

  const handle: EnclaveHandle<I> = Object.freeze({
    measurement,
    ecall(name: string, args: unknown) {
      const spec = calls.ecalls.get(name);
      if (!spec) return Promise.reject(new EnclaveCallError('unknown_ecall', `no ecall named ${name}`));
      if (!spec.args.Check(args))
        return Promise.reject(new EnclaveCallError('malformed_args', `ecall ${name}: args fail their schema`));
      return send(name, args, spec.result);
    },
    ecallUnchecked: (name: string, args: unknown) => send(name, args, null),
    postRaw(message: unknown) {
      worker.postMessage(message);
    },
    async terminate() {
      onGone('terminated by the host');
      await worker.terminate();
    },
  }) as EnclaveHandle<I>;
  return { handle, ready };
}
