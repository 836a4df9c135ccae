/** The part of fs-native-extensions (CommonJS, no bundled types) that enclave-sim/counter-lock.ts uses. */
declare module 'fs-native-extensions' {
  interface FsNativeExtensions {
    /** Non-blocking exclusive (or, with shared: true, shared) lock on the byte range; length 0 = to the end. false if held elsewhere. */
    tryLock(fd: number, offset?: number, length?: number, opts?: { shared?: boolean }): boolean;
    unlock(fd: number, offset?: number, length?: number): void;
  }
  const fsx: FsNativeExtensions;
  export default fsx;
}
