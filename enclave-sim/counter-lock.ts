/**
 * The exclusive lock that makes one enclave instance at a time, in any process on the platform dir, the
 * owner of its monotonic counter (`<platform dir>/counters/<counterId>.lock`). Without it two processes of
 * one host could run the same enclave identity side by side and both commit at one counter value: a fork
 * of the sealed state.
 *
 * An OS lock, not a lock file with a pid in it: fcntl F_OFD_SETLK on Linux (flock where there are no
 * open-file-description locks), through fs-native-extensions, since Node has no binding of its own.
 *  - It belongs to the open file description, not to the process, so a second open() of the file, in the
 *    same process or another, is refused too.
 *  - The kernel drops it when the description is closed, and a process killed with SIGKILL has all its
 *    descriptors closed: nothing is left stale, the next launch needs no timeout and no takeover.
 *  - Node opens files O_CLOEXEC, so no child process inherits the descriptor (and with it the lock).
 * The file is never deleted: after an unlink, a process still holding the old inode open could lock it
 * while a newcomer creates and locks a new file of the same name, and both would "hold" the lock.
 * Its content (the holder's pid) is for the error message only.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { constants } from 'node:fs';
import fsx from 'fs-native-extensions';
import { PlatformError } from './errors.ts';

/**
 * Lock files of this process whose release has begun but not finished (it waits for the counter's last
 * write). A launch in this process waits for that instead of being refused by its own past instance: the
 * worker's exit starts the release before `terminate()` resolves.
 */
const releasing = new Map<string, Promise<void>>();

export class CounterLock {
  readonly file: string;
  #handle: FileHandle | null;

  private constructor(file: string, handle: FileHandle) {
    this.file = file;
    this.#handle = handle;
  }

  /**
   * Takes the lock without waiting for another holder (only for a release already under way here).
   * @throws PlatformError('instance_busy') if another open description holds it (message names its pid);
   *   the fs error if the file cannot be opened or locked.
   */
  static async acquire(file: string): Promise<CounterLock> {
    await releasing.get(file);
    const handle = await open(file, constants.O_RDWR | constants.O_CREAT, 0o600);
    let locked: boolean;
    try {
      locked = fsx.tryLock(handle.fd);
    } catch (err) {
      await handle.close();
      throw err;
    }
    if (!locked) {
      const holder = await readHolder(handle);
      await handle.close();
      throw new PlatformError('instance_busy', `counter lock ${file} is held${holder ? ` by process ${holder}` : ''}`);
    }
    try {
      await handle.truncate(0);
      await handle.write(`${process.pid}\n`, 0);
    } catch {
      // Only the diagnostic pid is missing; the lock itself is held.
    }
    return new CounterLock(file, handle);
  }

  /** Drops the lock once `after` settled (closing the descriptor is what releases it). */
  release(after: Promise<unknown> = Promise.resolve()): Promise<void> {
    const h = this.#handle;
    if (!h) return Promise.resolve();
    this.#handle = null;
    const done: Promise<void> = after
      .catch(() => undefined)
      .then(() => h.close())
      .finally(() => {
        if (releasing.get(this.file) === done) releasing.delete(this.file);
      });
    releasing.set(this.file, done);
    return done;
  }
}

async function readHolder(handle: FileHandle): Promise<string | null> {
  try {
    const buf = Buffer.alloc(16);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    const text = buf.subarray(0, bytesRead).toString('latin1').trim();
    return /^[0-9]{1,10}$/.test(text) ? text : null;
  } catch {
    return null;
  }
}
