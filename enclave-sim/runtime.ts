/**
 * The trusted runtime: imported by an enclave PROGRAM and bundled into it, so it runs inside the enclave
 * worker and is covered by the measurement (like the SGX SDK's trusted runtime).
 *
 * A program calls `serveEnclave(iface, handlers, init?)` once at top level. The runtime then:
 *  - checks every message from the host against the envelope schema and the program's call schemas
 *    before any handler sees it, and answers anything malformed with an error code; refuses any message
 *    holding shared memory (see shared-memory.ts) before even that;
 *  - gives handlers an EnclaveContext: typed ocalls, sealed state with rollback protection, quotes and
 *    trusted randomness;
 *  - never forwards the text of an unexpected exception (it might contain secrets), only EnclaveErrors.
 */
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { randomFillSync } from 'node:crypto';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { EnclaveError, OcallFailedError, SealError } from './errors.ts';
import { bytesEqual } from './encoding.ts';
import { interfaceFingerprint, type EnclaveInterface } from './interface.ts';
import {
  BUILTIN_OCALLS,
  checkCounterState,
  checkHostToEnclave,
  checkPlatformToEnclave,
  hasPrototypeKey,
  type CounterState,
  type EnclaveBoot,
  type EnclaveToHost,
  type EnclaveToPlatform,
  type HostToEnclave,
} from './messages.ts';
import { QuoteSchema, type Quote } from './quote.ts';
import { inspectSealedBlob, openBlob, sealBlob } from './sealing.ts';
import { containsSharedMemory } from './shared-memory.ts';

export { EnclaveError, OcallFailedError, SealError, type SealErrorCode } from './errors.ts';
export type { Quote } from './quote.ts';

/** What a handler (and `init`) can do besides computing. */
export interface EnclaveContext<I extends EnclaveInterface> {
  /** Hex measurement of the running bundle. */
  readonly measurement: string;
  /** True if launched in debug mode (quotes say so; the platform can read `exposeForDebug` values). */
  readonly debug: boolean;
  /**
   * Calls out to the host. Args are checked before sending; the host's result is untrusted and checked
   * against the result schema.
   * @throws EnclaveError 'unknown_ocall' | 'malformed_ocall_args' | 'invalid_ocall_result';
   *   OcallFailedError ('ocall_failed') if the host answered with an error.
   */
  ocall<K extends keyof I['ocalls'] & string>(
    name: K,
    args: Static<I['ocalls'][K]['args']>,
  ): Promise<Static<I['ocalls'][K]['result']>>;
  /**
   * Seals `state` (AES-256-GCM under the sealing key, bound to the measurement, platform, this instance's
   * counter and the next counter value), has the host store it durably (built-in ocall; see the
   * SealedStore implementations in host.ts), then durably advances the platform's monotonic counter. Resolves
   * only when all of that is done. Calls are serialized in call order; `state` is copied at call time.
   * @throws EnclaveError('seal_failed') if the host's store or the counter advance failed; the previous
   *   sealed state then remains the latest that can be unsealed (or this one, if only the advance failed).
   *
   * With `{ protect: false }` the counter is left alone (one durable write instead of two): the blob
   * names the last protected blob as its predecessor, and the host may later restart the enclave from
   * it or from any other unprotected blob sealed since. Only for states whose loss harms no one but
   * this enclave's owner (e.g. a payee's credits, which the payer re-sends): the caller vouches for it.
   */
  sealState(state: Uint8Array, opts?: SealOptions): Promise<void>;
  /**
   * Loads the latest sealed blob from the host, checks and decrypts it. null if nothing was ever sealed
   * (counter 0 and no blob). Serialized with `sealState`.
   * @throws SealError 'tampered' | 'wrong_enclave' (other code, platform or instance) | 'rollback' |
   *   'missing' (the counter says something was sealed but the host has no blob).
   */
  unsealState(): Promise<Uint8Array | null>;
  /**
   * A quote over (measurement, reportData, nonce), signed by the attestation service after the platform
   * checked that this enclave is one it launched.
   * @throws EnclaveError('bad_quote_request') unless reportData is 32 bytes and nonce 1..64 bytes.
   */
  getQuote(reportData: Uint8Array, nonce: Uint8Array): Promise<Quote>;
  /** Trusted random bytes (node:crypto CSPRNG). @throws RangeError if n is not an integer in 0..2^24. */
  randomBytes(n: number): Uint8Array;
  /**
   * In a DEBUG enclave only, lets the platform read the value `read()` returns under `name` (the debugger
   * reading enclave memory). A no-op in production enclaves: `read` is not even kept.
   */
  exposeForDebug(name: string, read: () => Uint8Array): void;
}

export interface SealOptions {
  /** false: store only, without advancing the monotonic counter (see `sealState`). Default true. */
  protect?: boolean;
}

/** One handler per ecall; may be async. Throw EnclaveError for a stable error answer. */
export type EcallHandlers<I extends EnclaveInterface> = {
  [K in keyof I['ecalls']]: (
    args: Static<I['ecalls'][K]['args']>,
    ctx: EnclaveContext<I>,
  ) => Promise<Static<I['ecalls'][K]['result']>> | Static<I['ecalls'][K]['result']>;
};

const MAX_MESSAGE = 1000;
const CODE = /^[a-z][a-z0-9_]{0,127}$/;
const BuiltinStoreResult = TypeCompiler.Compile(Type.Null());
const BuiltinLoadResult = TypeCompiler.Compile(
  Type.Union([Type.Uint8Array({ maxByteLength: 256 << 20 }), Type.Null()]),
);
const checkQuote = TypeCompiler.Compile(QuoteSchema);
/** The built-in store ocall's argument (the host checks that `blob` is bytes itself, so no schema is needed here). */
type BuiltinStoreArgs = { blob: Uint8Array };

let served = false;

/**
 * Starts serving ecalls. Call once, at the top level of the program entry. `init` runs before the first
 * ecall is served; if it throws, the launch fails (an EnclaveError's code reaches the host, e.g. 'rollback').
 * @throws Error if not running inside an enclave launched by `Platform.launch`, if called twice, or if
 *   a handler is missing for a declared ecall.
 */
export function serveEnclave<I extends EnclaveInterface>(
  iface: I,
  handlers: EcallHandlers<I>,
  init?: (ctx: EnclaveContext<I>) => Promise<void>,
): void {
  if (served) throw new Error('serveEnclave called twice');
  const boot = takeBoot();
  served = true;
  const host = parentPort as MessagePort;
  const ecalls = compileCalls(iface.ecalls);
  const ocalls = compileCalls(iface.ocalls);
  const handlerOf = new Map<string, (args: unknown, ctx: EnclaveContext<I>) => unknown>();
  for (const name of ecalls.keys()) {
    const h = (handlers as Record<string, unknown>)[name];
    if (typeof h !== 'function' || !Object.prototype.hasOwnProperty.call(handlers, name))
      throw new Error(`no handler for ecall ${name}`);
    handlerOf.set(name, h as (args: unknown, ctx: EnclaveContext<I>) => unknown);
  }

  const send = (msg: EnclaveToHost) => host.postMessage(msg);
  const debugReaders = new Map<string, () => Uint8Array>();
  const platform = new PlatformChannel(boot.platformPort, debugReaders);

  // ---- ocalls -----------------------------------------------------------------------------------
  const pendingOcalls = new Map<number, { name: string; resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextOcallId = 1;
  const rawOcall = (name: string, args: unknown) =>
    new Promise<unknown>((resolve, reject) => {
      const id = nextOcallId++;
      send({ t: 'ocall', id, name, args }); // throws (rejecting this promise) if args cannot be cloned
      pendingOcalls.set(id, { name, resolve, reject });
    });

  const sealed = new SealedState(boot, platform, {
    store: async (blob) => {
      const result = await rawOcall(BUILTIN_OCALLS.storeSealed, { blob } satisfies BuiltinStoreArgs);
      if (!BuiltinStoreResult.Check(result))
        throw new EnclaveError('invalid_ocall_result', 'host answered the store ocall with a non-null value');
    },
    load: async () => {
      const result = await rawOcall(BUILTIN_OCALLS.loadSealed, {});
      if (!BuiltinLoadResult.Check(result))
        throw new EnclaveError('invalid_ocall_result', 'host answered the load ocall with neither bytes nor null');
      return result;
    },
  });

  const ctx: EnclaveContext<I> = Object.freeze({
    measurement: boot.measurement,
    debug: boot.debug,
    async ocall(name: string, args: unknown) {
      const spec = ocalls.get(name);
      if (!spec) throw new EnclaveError('unknown_ocall', `no ocall named ${name}`);
      if (!spec.args.Check(args))
        throw new EnclaveError('malformed_ocall_args', `ocall ${name}: ${firstError(spec.args, args)}`);
      if (spec.oneway) {
        try {
          send({ t: 'ocall_oneway', name, args });
        } catch {
          throw new EnclaveError(
            'malformed_ocall_args',
            `ocall ${name}: args cannot be sent (not structured-cloneable)`,
          );
        }
        return null;
      }
      const result = await rawOcall(name, args);
      if (hasPrototypeKey(result) || !spec.result.Check(result)) {
        throw new EnclaveError('invalid_ocall_result', `ocall ${name}: host result fails its schema`);
      }
      return result;
    },
    sealState: (state: Uint8Array, opts?: SealOptions) => sealed.seal(state, opts?.protect !== false),
    unsealState: () => sealed.unseal(),
    async getQuote(reportData: Uint8Array, nonce: Uint8Array) {
      if (
        !(reportData instanceof Uint8Array) ||
        reportData.length !== 32 ||
        !(nonce instanceof Uint8Array) ||
        nonce.length < 1 ||
        nonce.length > 64
      ) {
        throw new EnclaveError('bad_quote_request', 'reportData must be 32 bytes and nonce 1..64 bytes');
      }
      const quote = await platform.request({ t: 'quote', id: 0, reportData: reportData.slice(), nonce: nonce.slice() });
      if (!checkQuote.Check(quote)) throw new EnclaveError('platform_error', 'platform returned a malformed quote');
      return quote;
    },
    randomBytes(n: number) {
      if (!Number.isInteger(n) || n < 0 || n > 1 << 24)
        throw new RangeError('randomBytes: n must be an integer in 0..2^24');
      return randomFillSync(new Uint8Array(n));
    },
    exposeForDebug(name: string, read: () => Uint8Array) {
      if (boot.debug) debugReaders.set(name, read);
    },
  }) as EnclaveContext<I>;

  // ---- ecalls -----------------------------------------------------------------------------------
  const initDone = (async () => {
    if (init) await init(ctx);
  })();
  initDone.then(
    () => send({ t: 'ready', fingerprint: interfaceFingerprint(iface) }),
    (err: unknown) => send({ t: 'init_failed', ...errorAnswer(err, 'init_failed', 'init') }),
  );

  const fail = (id: number, code: string, message: string) =>
    send({ t: 'ecall_error', id, code, message: clip(message) });

  async function runEcall(id: number, name: string, args: unknown): Promise<void> {
    try {
      await initDone;
    } catch {
      return fail(id, 'init_failed', 'enclave failed to initialize');
    }
    const spec = ecalls.get(name);
    const handler = handlerOf.get(name);
    if (!spec || !handler) return fail(id, 'unknown_ecall', `no ecall named ${JSON.stringify(name.slice(0, 64))}`);
    if (hasPrototypeKey(args)) return fail(id, 'malformed_args', `ecall ${name}: __proto__ keys are not accepted`);
    if (!spec.args.Check(args)) return fail(id, 'malformed_args', `ecall ${name}: ${firstError(spec.args, args)}`);
    let result: unknown;
    try {
      result = await handler.call(handlers, args, ctx);
    } catch (err) {
      const { code, message } = errorAnswer(err, 'internal_error', `ecall ${name}`);
      return fail(id, code, message);
    }
    if (!spec.result.Check(result))
      return fail(id, 'invalid_result', `ecall ${name} produced a result that fails its schema`);
    try {
      send({ t: 'ecall_result', id, result });
    } catch {
      fail(id, 'invalid_result', `ecall ${name} produced a result that cannot be sent`);
    }
  }

  host.on('message', (msg: unknown) => {
    if (containsSharedMemory(msg)) return refuseShared(msg);
    if (!checkHostToEnclave.Check(msg)) return answerMalformed(msg);
    const m: HostToEnclave = msg;
    switch (m.t) {
      case 'ecall':
        void runEcall(m.id, m.name, m.args);
        return;
      case 'ocall_result':
      case 'ocall_error': {
        const pending = pendingOcalls.get(m.id);
        if (!pending)
          return send({ t: 'protocol_error', code: 'unknown_ocall_id', message: `no pending ocall ${m.id}` });
        pendingOcalls.delete(m.id);
        if (m.t === 'ocall_result') pending.resolve(m.result);
        else pending.reject(new OcallFailedError(pending.name, m.code, clip(m.message)));
        return;
      }
    }
  });
  host.on('messageerror', () =>
    send({ t: 'protocol_error', code: 'malformed_message', message: 'message could not be deserialized' }),
  );

  /**
   * A message holding shared memory: the host could rewrite those bytes while the enclave checks and uses
   * them, so nothing in it is used. Only `t` and `id` (primitives, hence copies) are read, to settle the
   * call it belongs to: an ecall fails with 'shared_memory', an ocall rejects with 'invalid_ocall_result'.
   */
  function refuseShared(msg: unknown): void {
    const { t, id } = (typeof msg === 'object' && msg !== null ? msg : {}) as { t?: unknown; id?: unknown };
    if (t === 'ecall' && Number.isSafeInteger(id) && (id as number) >= 0) {
      return fail(
        id as number,
        'shared_memory',
        'ecall message contains shared memory (a SharedArrayBuffer or a view of one)',
      );
    }
    const pending =
      (t === 'ocall_result' || t === 'ocall_error') && typeof id === 'number' ? pendingOcalls.get(id) : undefined;
    if (pending) {
      pendingOcalls.delete(id as number);
      return pending.reject(
        new EnclaveError('invalid_ocall_result', `ocall ${pending.name}: the host answered with shared memory`),
      );
    }
    send({ t: 'protocol_error', code: 'shared_memory', message: 'message contains shared memory' });
  }

  /** A malformed envelope that still names an ecall id gets an ecall_error, so the host's call settles. */
  function answerMalformed(msg: unknown): void {
    const id = (msg as { id?: unknown } | null)?.id;
    const t = (msg as { t?: unknown } | null)?.t;
    if (t === 'ecall' && Number.isSafeInteger(id) && (id as number) >= 0)
      fail(id as number, 'malformed_message', 'ecall envelope fails its schema');
    else send({ t: 'protocol_error', code: 'malformed_message', message: 'message fails the envelope schema' });
  }
}

// ---- sealed state ---------------------------------------------------------------------------------

interface BlobStore {
  store(blob: Uint8Array): Promise<void>;
  load(): Promise<Uint8Array | null>;
}

/**
 * Sealing with rollback protection. The counter record holds the value and the commit tag of the latest
 * committed blob; each blob carries its own tag and its predecessor's. Rules on unseal (P = counter):
 *  - blob counter < P                          → 'rollback' (an older state)
 *  - blob counter = P, tag = P's tag           → accept
 *  - blob counter = P, other tag               → 'rollback' (an abandoned sibling, see below)
 *  - blob counter = P, prevTag = P's tag       → accept (an unprotected successor: sealed with
 *                                                `protect: false`, the counter left at P)
 *  - blob counter = P + 1, prevTag = P's tag   → accept and advance the counter to it (crash between
 *                                                store and advance; this state was never reported done)
 *  - anything else                             → 'rollback'
 * The tags close a fork the plain "+1" rule leaves open: after a crash between store and advance, a host
 * that kept the old blob could restart from it, let the enclave seal a different successor at P + 1 and
 * later swap in the first one. With tags, once either successor is committed the other no longer matches.
 * Unprotected successors of P are all acceptable while the counter is at P, by the caller's promise that
 * going back among them (or to P) harms no one else; the next protected seal (P + 1) shuts them all out.
 * A protected blob never has prevTag equal to its own counter value's tag (tags are random), so the two
 * kinds cannot be confused.
 */
class SealedState {
  readonly #boot: EnclaveBoot;
  readonly #platform: PlatformChannel;
  readonly #store: BlobStore;
  #chain: Promise<unknown> = Promise.resolve();
  #committed: CounterState | null = null;

  constructor(boot: EnclaveBoot, platform: PlatformChannel, store: BlobStore) {
    this.#boot = boot;
    this.#platform = platform;
    this.#store = store;
  }

  seal(state: Uint8Array, protect: boolean): Promise<void> {
    if (!(state instanceof Uint8Array)) return Promise.reject(new TypeError('sealState: state must be a Uint8Array'));
    const copy = state.slice();
    return this.#enqueue(async () => {
      try {
        await this.#seal(copy, protect);
      } catch (err) {
        this.#committed = null; // re-read the counter next time
        throw err instanceof SealError ? err : new EnclaveError('seal_failed', `sealState failed: ${describe(err)}`);
      } finally {
        copy.fill(0);
      }
    });
  }

  unseal(): Promise<Uint8Array | null> {
    return this.#enqueue(() => this.#unseal());
  }

  async #seal(state: Uint8Array, protect: boolean): Promise<void> {
    const current = this.#committed ?? (await this.#platform.readCounter());
    const next = { value: protect ? current.value + 1 : current.value, tag: randomFillSync(new Uint8Array(16)) };
    const b = this.#boot;
    const blob = sealBlob(
      b.sealingKey,
      {
        measurement: b.measurement,
        platformId: b.platformId,
        counterId: b.counterId,
        counter: next.value,
        tag: next.tag,
        prevTag: current.tag,
      },
      state,
      randomFillSync(new Uint8Array(12)),
    );
    await this.#store.store(blob);
    if (!protect) {
      this.#committed = current;
      return;
    }
    await this.#platform.advanceCounter(current.value, next.value, next.tag);
    this.#committed = next;
  }

  async #unseal(): Promise<Uint8Array | null> {
    const loaded = await this.#store.load();
    const current = await this.#platform.readCounter();
    const b = this.#boot;
    if (loaded === null) {
      if (current.value === 0) {
        this.#committed = current;
        return null;
      }
      throw new SealError('missing', `the platform counter is at ${current.value} but the host has no sealed blob`);
    }
    // Check once, use only the checked copy: the runtime already refuses shared memory, and this copy
    // makes sure no later read of the blob can see other bytes than the ones checked.
    const blob = loaded.slice();
    const claimed = inspectSealedBlob(blob);
    if (!claimed) throw new SealError('tampered', 'not a sealed blob');
    // The header is not yet authenticated: these checks only pick the most useful refusal.
    if (claimed.measurement !== b.measurement)
      throw new SealError('wrong_enclave', 'blob was sealed by other enclave code');
    if (claimed.platformId !== b.platformId)
      throw new SealError('wrong_enclave', 'blob was sealed on another platform');
    if (claimed.counterId !== b.counterId)
      throw new SealError('wrong_enclave', 'blob was sealed by another instance of this enclave');
    // Every decision below is taken from the header openBlob parsed from the very bytes GCM authenticated.
    const { header, plaintext } = openBlob(b.sealingKey, blob);
    if (header.counterId !== b.counterId) {
      plaintext.fill(0);
      throw new SealError('wrong_enclave', 'blob was sealed by another instance of this enclave');
    }
    const c = header.counter;
    const p = current.value;
    if (c === p && bytesEqual(header.tag, current.tag)) {
      this.#committed = { value: c, tag: header.tag };
      return plaintext;
    }
    if (c === p && bytesEqual(header.prevTag, current.tag)) {
      this.#committed = current;
      return plaintext;
    }
    if (c === p + 1 && bytesEqual(header.prevTag, current.tag)) {
      try {
        await this.#platform.advanceCounter(p, c, header.tag);
      } catch (err) {
        // The advance this blob was waiting for may have landed meanwhile (a late write from the
        // previous run); that is the same outcome.
        const now = await this.#platform.readCounter();
        if (now.value !== c || !bytesEqual(now.tag, header.tag)) throw err;
      }
      this.#committed = { value: c, tag: header.tag };
      return plaintext;
    }
    plaintext.fill(0);
    if (c === p)
      throw new SealError('rollback', `blob at counter ${c} is not the one committed at ${p} (abandoned successor)`);
    if (c < p) throw new SealError('rollback', `blob sealed at counter ${c} but the platform counter is ${p}`);
    throw new SealError(
      'rollback',
      `blob at counter ${c} does not follow the platform counter ${p} (platform counters lost or rolled back?)`,
    );
  }

  #enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(op, op);
    this.#chain = run.catch(() => {});
    return run;
  }
}

// ---- platform channel -----------------------------------------------------------------------------

type PlatformRequest = Exclude<EnclaveToPlatform, { t: 'debug_secret' }>;

/** Requests to the Platform over the private port it gave this worker at launch. */
class PlatformChannel {
  readonly #port: MessagePort;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #nextId = 1;

  constructor(port: MessagePort, debugReaders: Map<string, () => Uint8Array>) {
    this.#port = port;
    port.on('message', (msg: unknown) => {
      if (containsSharedMemory(msg)) {
        // Defence in depth (the Platform is the simulated CPU, but it runs in the host's process).
        const id = typeof msg === 'object' && msg !== null ? (msg as { id?: unknown }).id : undefined;
        const pending = typeof id === 'number' ? this.#pending.get(id) : undefined;
        if (pending) {
          this.#pending.delete(id as number);
          pending.reject(new EnclaveError('platform_error', 'platform reply contains shared memory'));
        }
        return;
      }
      if (!checkPlatformToEnclave.Check(msg)) return;
      if (msg.t === 'debug_read') {
        const read = debugReaders.get(msg.name);
        let value: Uint8Array | null = null;
        try {
          value = read ? read().slice() : null;
        } catch {
          value = null;
        }
        port.postMessage({ t: 'debug_secret', id: msg.id, value } satisfies EnclaveToPlatform);
        return;
      }
      const pending = this.#pending.get(msg.id);
      if (!pending) return;
      this.#pending.delete(msg.id);
      if (msg.t === 'reply') pending.resolve(msg.value);
      else pending.reject(new EnclaveError(msg.code, msg.message));
    });
    port.unref(); // the host channel keeps the worker alive; this one must not keep it from exiting
  }

  request(req: PlatformRequest): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#port.postMessage({ ...req, id });
    });
  }

  async readCounter(): Promise<CounterState> {
    const value = await this.request({ t: 'counter_read', id: 0 });
    if (!checkCounterState.Check(value))
      throw new EnclaveError('platform_error', 'platform returned a malformed counter');
    return value;
  }

  async advanceCounter(from: number, to: number, tag: Uint8Array): Promise<void> {
    await this.request({ t: 'counter_advance', id: 0, from, to, tag });
  }
}

// ---- helpers --------------------------------------------------------------------------------------

interface CompiledCall {
  args: TypeCheck<TSchema>;
  result: TypeCheck<TSchema>;
  oneway: boolean;
}

function compileCalls(calls: EnclaveInterface['ecalls']): Map<string, CompiledCall> {
  const out = new Map<string, CompiledCall>();
  for (const [name, spec] of Object.entries(calls)) {
    out.set(name, {
      args: TypeCompiler.Compile(spec.args),
      result: TypeCompiler.Compile(spec.result),
      oneway: spec.oneway === true,
    });
  }
  return out;
}

/** Takes the boot data the Platform put in workerData and scrubs the shared copy of the sealing key. */
function takeBoot(): EnclaveBoot {
  const wd = workerData as Partial<EnclaveBoot> | null;
  if (
    isMainThread ||
    !parentPort ||
    !wd ||
    wd.kind !== 'teechain-enclave-sim/boot/v1' ||
    !(wd.sealingKey instanceof Uint8Array) ||
    !wd.platformPort
  ) {
    throw new Error('serveEnclave must run inside an enclave launched by Platform.launch');
  }
  const boot: EnclaveBoot = { ...(wd as EnclaveBoot), sealingKey: wd.sealingKey.slice() };
  wd.sealingKey.fill(0);
  delete (wd as { platformPort?: unknown }).platformPort;
  return boot;
}

function firstError(check: TypeCheck<TSchema>, value: unknown): string {
  const e = check.Errors(value).First();
  return e ? clip(`${e.path || '/'}: ${e.message}`) : 'fails its schema';
}

/** EnclaveErrors keep their code and message; anything else becomes `fallback` with no detail. */
function errorAnswer(err: unknown, fallback: string, where: string): { code: string; message: string } {
  if (err instanceof EnclaveError && typeof err.code === 'string' && CODE.test(err.code)) {
    return { code: err.code, message: clip(String(err.message)) };
  }
  return { code: fallback, message: `${where} failed with an unexpected error` };
}

function describe(err: unknown): string {
  return err instanceof EnclaveError ? `${err.code}: ${err.message}` : 'unexpected error';
}

function clip(s: string): string {
  return s.length > MAX_MESSAGE ? `${s.slice(0, MAX_MESSAGE)}…` : s;
}
