/**
 * The simulated machine (CPU + firmware), HOST-ONLY. It owns:
 *  - the platform secret (`<dir>/platform-secret`, 32 random bytes, 0600), from which sealing keys derive;
 *  - the monotonic counters (`<dir>/counters/`, see counter.ts);
 *  - the registry of enclaves it launched, which is what it checks before asking the attestation service
 *    for a quote.
 * The platform dir is separate from wherever the host keeps sealed blobs (its SealedStore).
 *
 * SIMULATION: the platform runs in the host's own process. It creates each enclave worker itself and
 * hands it the sealing key and a private channel, so the host APPLICATION code never sees them, but the
 * host OS (or anyone who can attach a debugger to the process or read the platform dir) is not excluded.
 */
import { Worker, MessageChannel, type MessagePort, type ResourceLimits } from 'node:worker_threads';
import { link, mkdir, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import type { AttestationService } from './attestation.ts';
import { bundleEnclave } from './bundle.ts';
import { CounterStore, counterIdFor } from './counter.ts';
import { readFileIfExists, syncDirectory, writeFileDurably } from './durable-file.ts';
import { bytesToHex, lengthPrefixed, utf8ToBytes } from './encoding.ts';
import { EnclaveCallError, PlatformError } from './errors.ts';
import { connectHost, type EnclaveHandle, type OcallHandlers, type SealedStore } from './host.ts';
import type { EnclaveInterface } from './interface.ts';
import {
  checkEnclaveToPlatform,
  type EnclaveBoot,
  type EnclaveToPlatform,
  type PlatformToEnclave,
} from './messages.ts';
import { deriveSealingKey } from './sealing.ts';

/** Options of `Platform.launch`. */
export interface LaunchOptions<I extends EnclaveInterface> {
  /** The program entry (.ts); bundled and measured by the platform. */
  entry: string;
  /** The interface the program was built with (checked against the enclave's own at startup). */
  iface: I;
  ocalls: OcallHandlers<I>;
  /** Where the host keeps this enclave's sealed blob. */
  store: SealedStore;
  /**
   * SGX-like DEBUG attribute: quotes carry debug=true (verifiers refuse them unless allowDebug) and the
   * platform can read values the program exposes with `ctx.exposeForDebug`. For tests only.
   */
  debug?: boolean;
  /**
   * Which monotonic counter this enclave uses, i.e. which enclave instance it is (default 'default').
   * Two enclaves of the same code on one platform must use different instance names; launching a second
   * live one with the same name, from this process or another on the same platform dir, fails with
   * 'instance_busy'.
   */
  instance?: string;
  /** Worker heap limits (default: 256 MB old space, 48 MB young space, 4 MB stack). */
  resourceLimits?: ResourceLimits;
  /** Called with each protocol error the enclave reports (answers to malformed raw messages). */
  onProtocolError?: (err: EnclaveCallError) => void;
  /** Called when the handler of a one-way ocall fails (nobody else hears of it). */
  onOcallError?: (name: string, err: Error) => void;
}

const DEFAULT_LIMITS: ResourceLimits = { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 48, stackSizeMb: 4 };
const PLATFORM_ID_DOMAIN = utf8ToBytes('teechain-enclave-sim/platform-id/v1');

interface LaunchedEnclave {
  measurement: string;
  instance: string;
  counterId: string;
  debug: boolean;
  port: MessagePort;
  live: boolean;
  debugReads: Map<number, (value: Uint8Array | null) => void>;
}

/** A simulated TEE-capable machine. */
export class Platform {
  /** Public identifier of this platform (hex, 16 bytes; derived from the secret). */
  readonly id: string;
  /** The platform dir. */
  readonly dir: string;
  readonly #secret: Uint8Array;
  readonly #attestation: AttestationService;
  readonly #counters: CounterStore;
  readonly #liveByCounter = new Map<string, LaunchedEnclave>();
  readonly #byHandle = new WeakMap<object, LaunchedEnclave>();
  #nextDebugRead = 1;

  private constructor(dir: string, secret: Uint8Array, attestation: AttestationService) {
    this.dir = dir;
    this.#secret = secret;
    this.#attestation = attestation;
    this.#counters = new CounterStore(dir);
    this.id = bytesToHex(sha256(lengthPrefixed(PLATFORM_ID_DOMAIN, secret)).subarray(0, 16));
  }

  /**
   * Opens (creating if needed) the platform in `dir`.
   * @throws PlatformError('platform_corrupt') if the secret file exists but is not 32 bytes; fs errors.
   */
  static async open(opts: { dir: string; attestation: AttestationService }): Promise<Platform> {
    const dir = resolve(opts.dir);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const secret = await loadOrCreateSecret(join(dir, 'platform-secret'));
    return new Platform(dir, secret, opts.attestation);
  }

  /**
   * Bundles, measures and starts an enclave program, waits for its `init`, and returns its handle.
   * @throws EnclaveCallError: 'instance_busy'; 'interface_mismatch'; the code of an EnclaveError thrown by
   *   the program's init (e.g. 'tampered', 'wrong_enclave', 'rollback', 'missing'); 'init_failed';
   *   'enclave_terminated'. Error if the program does not build.
   */
  async launch<I extends EnclaveInterface>(opts: LaunchOptions<I>): Promise<EnclaveHandle<I>> {
    const instance = opts.instance ?? 'default';
    if (typeof instance !== 'string' || instance.length < 1 || instance.length > 128)
      throw new TypeError('instance must be 1..128 characters');
    const bundle = await bundleEnclave(opts.entry);
    const counterId = counterIdFor(bundle.measurement, instance);
    const busy = `an enclave with this code and instance ${JSON.stringify(instance)} is already running`;
    if (this.#liveByCounter.has(counterId)) throw new EnclaveCallError('instance_busy', busy);
    // Held from here until the worker exits: the check above sees only this process.
    try {
      await this.#counters.lock(counterId);
    } catch (err) {
      if (err instanceof PlatformError && err.code === 'instance_busy')
        throw new EnclaveCallError('instance_busy', `${busy} (${err.message})`);
      throw err;
    }
    const debug = opts.debug === true;
    const channel = new MessageChannel();
    const sealingKey = deriveSealingKey(this.#secret, bundle.measurement);
    const boot: EnclaveBoot = {
      kind: 'teechain-enclave-sim/boot/v1',
      measurement: bundle.measurement,
      platformId: this.id,
      counterId,
      debug,
      sealingKey,
      platformPort: channel.port2,
    };
    let worker: Worker;
    try {
      worker = new Worker(bundle.code, {
        eval: true,
        workerData: boot,
        transferList: [channel.port2],
        execArgv: [], // no host loaders (e.g. --import tsx) inside the enclave: only the measured bundle runs
        env: {},
        resourceLimits: opts.resourceLimits ?? DEFAULT_LIMITS,
        name: `enclave ${bundle.measurement.slice(0, 12)}`,
      });
    } catch (err) {
      await this.#counters.release(counterId);
      throw err;
    } finally {
      sealingKey.fill(0); // workerData was copied into the worker's message queue by the constructor
    }

    const record: LaunchedEnclave = {
      measurement: bundle.measurement,
      instance,
      counterId,
      debug,
      port: channel.port1,
      live: true,
      debugReads: new Map(),
    };
    this.#liveByCounter.set(counterId, record);
    channel.port1.on('message', (msg: unknown) => void this.#serve(record, msg));
    worker.on('exit', () => {
      record.live = false;
      if (this.#liveByCounter.get(counterId) === record) this.#liveByCounter.delete(counterId);
      for (const settle of record.debugReads.values()) settle(null);
      record.debugReads.clear();
      channel.port1.close();
      void this.#counters.release(counterId).catch(() => undefined);
    });

    const { handle, ready } = connectHost(worker, bundle.measurement, opts);
    try {
      await ready;
    } catch (err) {
      await worker.terminate();
      throw err;
    }
    this.#byHandle.set(handle, record);
    return handle;
  }

  /**
   * DEBUG enclaves only: reads the value the program exposed under `name` with `ctx.exposeForDebug`
   * (the simulated debugger reading enclave memory; used by the key-extraction test).
   * @throws PlatformError 'unknown_enclave' | 'not_debug' | 'no_such_secret' | 'enclave_terminated'.
   */
  async debugReadSecret(handle: EnclaveHandle<EnclaveInterface>, name: string): Promise<Uint8Array> {
    const record = this.#byHandle.get(handle);
    if (!record) throw new PlatformError('unknown_enclave', 'not an enclave launched by this platform');
    if (!record.debug) throw new PlatformError('not_debug', 'only debug enclaves can be read');
    if (!record.live) throw new PlatformError('enclave_terminated', 'the enclave is not running');
    const id = this.#nextDebugRead++;
    const value = await new Promise<Uint8Array | null>((resolve) => {
      record.debugReads.set(id, resolve);
      record.port.postMessage({ t: 'debug_read', id, name } satisfies PlatformToEnclave);
    });
    if (!value) throw new PlatformError('no_such_secret', `the enclave exposes no debug value ${JSON.stringify(name)}`);
    return value;
  }

  /** The monotonic counter value of an enclave instance (public information; for tests and diagnostics). */
  async readCounter(measurement: string, instance = 'default'): Promise<number> {
    return (await this.#counters.read(counterIdFor(measurement, instance))).value;
  }

  /** Serves one request from an enclave on its private channel. */
  async #serve(record: LaunchedEnclave, msg: unknown): Promise<void> {
    if (!checkEnclaveToPlatform.Check(msg)) return;
    const m: EnclaveToPlatform = msg;
    if (m.t === 'debug_secret') {
      const settle = record.debugReads.get(m.id);
      record.debugReads.delete(m.id);
      settle?.(m.value);
      return;
    }
    const reply = (value: unknown) => {
      if (record.live) record.port.postMessage({ t: 'reply', id: m.id, value } satisfies PlatformToEnclave);
    };
    const fail = (code: string, message: string) => {
      if (record.live) record.port.postMessage({ t: 'fail', id: m.id, code, message } satisfies PlatformToEnclave);
    };
    try {
      switch (m.t) {
        case 'counter_read':
          return reply(await this.#counters.read(record.counterId));
        case 'counter_advance':
          await this.#counters.advance(
            record.counterId,
            { measurement: record.measurement, instance: record.instance },
            m.from,
            m.to,
            m.tag,
          );
          return reply(null);
        case 'quote':
          // The check "this enclave is one I launched": the request came on the private channel of a live
          // enclave in the registry, and the measurement is taken from the registry, not from the request.
          if (!record.live) return fail('enclave_terminated', 'enclave is not running');
          return reply(
            this.#attestation.issueQuote({
              measurement: record.measurement,
              reportData: m.reportData,
              nonce: m.nonce,
              debug: record.debug,
              platformId: this.id,
            }),
          );
      }
    } catch (err) {
      const code = err instanceof PlatformError ? err.code : 'platform_error';
      fail(code, err instanceof Error ? err.message.slice(0, 1000) : 'platform error');
    }
  }
}

/** Reads the platform secret, or creates it exactly once even if two processes race (link is exclusive). */
async function loadOrCreateSecret(file: string): Promise<Uint8Array> {
  let secret = await readFileIfExists(file);
  if (!secret) {
    const tmp = `${file}.new-${process.pid}-${randomBytes(6).toString('hex')}`;
    await writeFileDurably(tmp, randomBytes(32), 0o600);
    try {
      await link(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await unlink(tmp).catch(() => {});
    }
    await syncDirectory(resolve(file, '..'));
    secret = await readFileIfExists(file);
  }
  if (!secret || secret.length !== 32)
    throw new PlatformError('platform_corrupt', `${file} is not a 32-byte platform secret`);
  return secret;
}
