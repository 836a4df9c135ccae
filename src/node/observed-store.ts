/**
 * Times the host's sealed-state writes. Sealing happens inside the enclave; the write to disk (and its
 * fdatasync, the part that costs) happens here on the host, so this is where its latency is measured.
 */
import type { SealedStore } from '../../enclave-sim/index.ts';
import type { NodeObserver } from './observer.ts';

/** `store` itself when there is no observer; otherwise a SealedStore that reports each write. */
export function observeStore(store: SealedStore, observer: NodeObserver | undefined): SealedStore {
  if (!observer?.sealedWrite) return store;
  return {
    async store(blob) {
      const start = process.hrtime.bigint();
      let ok = false;
      try {
        await store.store(blob);
        ok = true;
      } finally {
        observer.sealedWrite?.(Number(process.hrtime.bigint() - start) / 1e9, blob.length, ok);
      }
    },
    load: () => store.load(),
  };
}
