/**
 * The host's typed client of the treasury enclave. Every ecall's name fixes its argument and result
 * types, both read from the enclave's own interface (src/enclave/treasury/interface.ts, declared with
 * enclave-sim's defineInterface), so a host call that does not match the enclave's schema is a compile
 * error here rather than a `malformed_args` answer at run time. The enclave's error answers become
 * NodeErrors with the same code (errors.ts).
 */
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Static } from '@sinclair/typebox';
import {
  Platform,
  SlotSealedStore,
  type AttestationService,
  type EnclaveHandle,
  type OcallHandlers,
} from '../../enclave-sim/index.ts';
import { TreasuryInterface } from '../enclave/treasury/interface.ts';
import { NodeError, fromEnclaveError } from './errors.ts';
import type { NodeObserver } from './observer.ts';
import { observeStore } from './observed-store.ts';

/** The treasury program's entry, bundled and measured by the platform at launch. */
export const TREASURY_PROGRAM = join(dirname(fileURLToPath(import.meta.url)), '../enclave/treasury/program.ts');

type Ecalls = TreasuryInterface['ecalls'];
/** The name of one of the treasury's ecalls. */
export type EcallName = keyof Ecalls & string;
/** What ecall `K` takes, as its schema in interface.ts says. */
export type EcallArgs<K extends EcallName> = Static<Ecalls[K]['args']>;
/** What ecall `K` answers, as its schema in interface.ts says. */
export type EcallResult<K extends EcallName> = Static<Ecalls[K]['result']>;

export type TreasuryEnclaveHandle = EnclaveHandle<TreasuryInterface>;
/** What the host answers the treasury's ocalls with (frames to send, chain look-ups, events). */
export type TreasuryOcalls = OcallHandlers<TreasuryInterface>;

export interface LaunchTreasuryOptions {
  datadir: string;
  attestation: AttestationService;
  ocalls: TreasuryOcalls;
  /** Told of sealed writes and of failed one-way ocall handlers. */
  observer?: NodeObserver;
}

/** What a part of the host needs to call the enclave (tests hand the parts a stub of it). */
export type EcallPort = Pick<EnclaveClient, 'call'>;

export class EnclaveClient {
  private constructor(
    private readonly handle: TreasuryEnclaveHandle,
    private readonly store: SlotSealedStore,
  ) {}

  /** Launches the treasury program on the platform in `datadir`, sealing to `<datadir>/treasury.sealed`. */
  static async launch(opts: LaunchTreasuryOptions): Promise<EnclaveClient> {
    const platform = await Platform.open({ dir: join(opts.datadir, 'platform'), attestation: opts.attestation });
    const store = new SlotSealedStore(join(opts.datadir, 'treasury.sealed'));
    const handle = await platform.launch({
      entry: TREASURY_PROGRAM,
      iface: TreasuryInterface,
      store: observeStore(store, opts.observer),
      onOcallError: (name, err) => opts.observer?.ocallFailed?.(name, err.message),
      ocalls: opts.ocalls,
    });
    return new EnclaveClient(handle, store);
  }

  /** The measurement of the program running in the enclave (what peers check in its quote). */
  get measurement(): string {
    return this.handle.measurement;
  }

  /**
   * Calls an ecall.
   * @throws NodeError with the enclave's code when it refuses, or the platform's (enclave_terminated…).
   */
  async call<K extends EcallName>(name: K, args: EcallArgs<K>): Promise<EcallResult<K>> {
    try {
      return await this.handle.ecall(name, args);
    } catch (err) {
      throw fromEnclaveError(err);
    }
  }

  /**
   * The first ecall: restores the sealed state. A refused blob (rollback, tampering) stops the enclave
   * here, and the node with it: a treasury that cannot prove its state is current must not run.
   * @throws NodeError enclave_failed, naming the enclave's code and reason
   */
  async init(args: EcallArgs<'init'>): Promise<EcallResult<'init'>> {
    try {
      return await this.handle.ecall('init', args);
    } catch (err) {
      await this.handle.terminate();
      const code = (err as { code?: string }).code ?? 'unknown';
      throw new NodeError(
        'enclave_failed',
        `the enclave refused its sealed state (${code}): ${(err as Error).message}`,
      );
    }
  }

  /** Stops the enclave, then closes its sealed store; ecalls still pending reject with enclave_terminated. */
  async stop(): Promise<void> {
    await this.handle.terminate();
    await this.store.close();
  }
}
