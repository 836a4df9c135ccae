/**
 * The platform's monotonic counters (simulating SGX/TPM non-volatile counters), one per enclave instance,
 * kept in the PLATFORM dir, never in the host's sealed-blob storage.
 *
 * Record `<platform dir>/counters/<counterId>` in a two-slot file (durable-file.ts SlotFile: one
 * positioned write + fdatasync per advance, torn writes detected by checksum), holding:
 *
 *   {"format":"teechain-enclave-sim/counter/v1","counterId":"<64 hex>","measurement":"<64 hex>",
 *    "instance":"default","value":7,"tag":"<32 hex>"}
 *
 * `value` only ever grows by one. `tag` is the commit tag of the sealed blob committed at `value` (random,
 * chosen by the enclave); it lets the enclave tell two different blobs sealed at the same value apart
 * (see runtime.ts, "unsealState"). No file means value 0 with an all-zero tag.
 *
 * Only the holder of the counter's lock (counter-lock.ts, `<counterId>.lock` beside it) advances it: the
 * lock is what makes the compare-and-set exclusive across processes, the two-slot file alone is not.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { PlatformError } from './errors.ts';
import { bytesToHex, hexToBytes, isHex, lengthPrefixed, utf8ToBytes } from './encoding.ts';
import { SlotFile } from './durable-file.ts';
import { CounterLock } from './counter-lock.ts';
import type { CounterState } from './messages.ts';

const FORMAT = 'teechain-enclave-sim/counter/v1';
const COUNTER_ID_DOMAIN = utf8ToBytes('teechain-enclave-sim/counter-id/v1');

/** The counter of one enclave instance: SHA-256 over length-prefixed domain | measurement | instance name. */
export function counterIdFor(measurement: string, instance: string): string {
  return bytesToHex(sha256(lengthPrefixed(COUNTER_ID_DOMAIN, hexToBytes(measurement), utf8ToBytes(instance))));
}

/** Reads and advances counter files. Operations on one counter are serialized within the process. */
export class CounterStore {
  readonly #dir: string;
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #files = new Map<string, Promise<SlotFile>>();
  readonly #locks = new Map<string, CounterLock>();

  constructor(platformDir: string) {
    this.#dir = join(platformDir, 'counters');
  }

  /** @throws PlatformError('counter_corrupt') if the file exists but is not a valid counter file. */
  read(counterId: string): Promise<CounterState> {
    return this.#serialized(counterId, () => this.#read(counterId));
  }

  /**
   * Takes the counter's exclusive lock for this store, held until `release`. Taken once per enclave
   * launch, so advancing costs nothing more.
   * @throws PlatformError('instance_busy') if this store or any other handle, in any process, holds it.
   */
  lock(counterId: string): Promise<void> {
    return this.#serialized(counterId, async () => {
      if (this.#locks.has(counterId))
        throw new PlatformError('instance_busy', `counter ${counterId} is already locked here`);
      await mkdir(this.#dir, { recursive: true, mode: 0o700 });
      this.#locks.set(counterId, await CounterLock.acquire(join(this.#dir, `${counterId}.lock`)));
    });
  }

  /**
   * Compare-and-set `from` → `to` (= from + 1), durably, recording `tag`.
   * @throws PlatformError('counter_not_locked') if this store does not hold the counter's lock;
   *   'counter_conflict' if the counter is not at `from` or `to` is not `from + 1`; 'counter_corrupt';
   *   or the fs error of the write (the counter is then unchanged or advanced, never torn).
   */
  advance(
    counterId: string,
    meta: { measurement: string; instance: string },
    from: number,
    to: number,
    tag: Uint8Array,
  ): Promise<void> {
    return this.#serialized(counterId, async () => {
      if (!this.#locks.has(counterId))
        throw new PlatformError('counter_not_locked', `counter ${counterId} is not locked by this process`);
      // Compared against the record on disk each time (not a cached value): another process may share the platform dir.
      await (
        await this.#slots(counterId)
      ).update((bytes) => {
        const current = this.#parse(counterId, bytes);
        if (current.value !== from || to !== from + 1) {
          throw new PlatformError('counter_conflict', `counter is at ${current.value}, asked to go ${from} -> ${to}`);
        }
        return utf8ToBytes(
          JSON.stringify({
            format: FORMAT,
            counterId,
            measurement: meta.measurement,
            instance: meta.instance,
            value: to,
            tag: bytesToHex(tag),
          }),
        );
      });
    });
  }

  async #read(counterId: string): Promise<CounterState> {
    return this.#parse(counterId, await (await this.#slots(counterId)).read());
  }

  #parse(counterId: string, bytes: Uint8Array | null): CounterState {
    if (!bytes) return { value: 0, tag: new Uint8Array(16) };
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    } catch {
      throw new PlatformError('counter_corrupt', `counter ${counterId} is not JSON`);
    }
    const { format, value, tag } = parsed;
    if (
      format !== FORMAT ||
      parsed.counterId !== counterId ||
      !Number.isSafeInteger(value) ||
      (value as number) < 0 ||
      !isHex(tag, 16)
    ) {
      throw new PlatformError('counter_corrupt', `counter ${counterId} is not a valid counter file`);
    }
    return { value: value as number, tag: hexToBytes(tag) };
  }

  /**
   * Closes the counter's files once no enclave uses it (they are reopened on the next use) and drops its
   * lock. Advances not yet started are refused from now on; the lock goes only after the one under way.
   */
  release(counterId: string): Promise<void> {
    const lock = this.#locks.get(counterId);
    this.#locks.delete(counterId);
    const closed = this.#serialized(counterId, async () => {
      const f = this.#files.get(counterId);
      this.#files.delete(counterId);
      if (f) await (await f).close();
    });
    return lock ? lock.release(closed).then(() => closed) : closed;
  }

  /** The counter's slot file, opened once and kept open while its enclave runs (written on every seal). */
  #slots(counterId: string): Promise<SlotFile> {
    let f = this.#files.get(counterId);
    if (!f) {
      f = mkdir(this.#dir, { recursive: true, mode: 0o700 }).then(() =>
        SlotFile.open(join(this.#dir, counterId), 0o600),
      );
      this.#files.set(counterId, f);
      f.catch(() => this.#files.delete(counterId));
    }
    return f;
  }

  #serialized<T>(counterId: string, op: () => Promise<T>): Promise<T> {
    const prev = this.#queues.get(counterId) ?? Promise.resolve();
    const next = prev.then(op, op);
    const tail = next.catch(() => {});
    this.#queues.set(counterId, tail);
    void tail.then(() => {
      if (this.#queues.get(counterId) === tail) this.#queues.delete(counterId);
    });
    return next;
  }
}
