/**
 * Finding shared memory in a message from the host, so the runtime can refuse it before anything reads it.
 *
 * Structured clone (postMessage) gives the enclave its own copy of every ordinary ArrayBuffer, so bytes
 * the host sends that way cannot change after the enclave checked them. A SharedArrayBuffer is the one
 * exception: it stays shared, and another host thread can rewrite the bytes between the enclave's check
 * and its use (parse a sealed header, then authenticate a different one). Refusing shared memory at the
 * boundary is therefore enough to make every byte the enclave holds its own.
 *
 * This runs on every message (payment batches of up to 100k objects), so the common case must stay cheap:
 * one iterative walk with no "seen" set (a Set of 100k objects costs ~15x the walk itself) and nothing
 * pushed for primitives. Structured clone can still produce shared references and cycles; a walk that
 * visits more than WALK_BUDGET objects therefore starts over with a "seen" set, which bounds it by the
 * number of distinct objects (i.e. by the message size).
 */
import { types } from 'node:util';

const WALK_BUDGET = 1 << 20;
const OBJECT_PROTO = Object.prototype;
const ARRAY_PROTO = Array.prototype;

/** True if `value` contains, anywhere, a SharedArrayBuffer or a typed array / DataView backed by one. */
export function containsSharedMemory(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  const found = walk(value, null);
  return found === 'over_budget' ? walk(value, new Set()) === true : found;
}

function walk(root: object, seen: Set<object> | null): boolean | 'over_budget' {
  const stack: object[] = [root];
  let pushed = 1;
  const push = (x: unknown): boolean => {
    if (typeof x !== 'object' || x === null) return true;
    if (seen === null && ++pushed > WALK_BUDGET) return false;
    stack.push(x);
    return true;
  };
  while (stack.length > 0) {
    const v = stack.pop() as Record<string, unknown>;
    if (seen !== null) {
      if (seen.has(v)) continue;
      seen.add(v);
    }
    if (ArrayBuffer.isView(v)) {
      if (types.isSharedArrayBuffer(v.buffer)) return true;
      continue;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto === OBJECT_PROTO || proto === ARRAY_PROTO) {
      // Plain objects and arrays, i.e. nearly everything: their clones carry only enumerable own keys.
      for (const k in v) if (!push(v[k])) return 'over_budget';
      continue;
    }
    if (types.isAnyArrayBuffer(v)) {
      if (types.isSharedArrayBuffer(v)) return true;
      continue;
    }
    if (v instanceof Map) {
      for (const [k, x] of v) if (!push(k) || !push(x)) return 'over_budget';
      continue;
    }
    if (v instanceof Set) {
      for (const x of v) if (!push(x)) return 'over_budget';
      continue;
    }
    // The rest (Error, Date, RegExp, boxed primitives, null-prototype objects): every own property,
    // enumerable or not (an Error's cause is not).
    for (const k of Object.getOwnPropertyNames(v)) if (!push(v[k])) return 'over_budget';
  }
  return false;
}
