/**
 * The wire format of the two channels into an enclave worker, as TypeBox schemas. Every message is
 * checked against these on arrival, on both sides, before anything else looks at it.
 *
 *   host     ⇄ enclave : the worker's parent port. ecalls in, ocalls out.
 *   platform ⇄ enclave : a private MessageChannel the Platform hands to the worker at launch
 *                        (monotonic counter, quotes, the debug hook). The host application never holds it.
 *
 * Payloads (`args`, `result`) are `Unknown` here; they are checked against the program's own call schemas.
 */
import { Type, type Static } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { MessagePort } from 'node:worker_threads';

const Id = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Code = Type.String({ minLength: 1, maxLength: 128 });
const Message = Type.String({ maxLength: 4096 });
const Name = Type.String({ minLength: 1, maxLength: 1024 });
/** Monotonic counter values: plain numbers, far from 2^53 in any realistic lifetime. */
const CounterValue = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Tag = Type.Uint8Array({ minByteLength: 16, maxByteLength: 16 });

// ---- host → enclave -------------------------------------------------------------------------------
export const EcallRequest = Type.Object({ t: Type.Literal('ecall'), id: Id, name: Name, args: Type.Unknown() });
export const OcallResult = Type.Object({ t: Type.Literal('ocall_result'), id: Id, result: Type.Unknown() });
export const OcallFailure = Type.Object({ t: Type.Literal('ocall_error'), id: Id, code: Code, message: Message });
export const HostToEnclave = Type.Union([EcallRequest, OcallResult, OcallFailure]);
export type HostToEnclave = Static<typeof HostToEnclave>;

// ---- enclave → host -------------------------------------------------------------------------------
export const Ready = Type.Object({ t: Type.Literal('ready'), fingerprint: Type.String({ maxLength: 64 }) });
export const InitFailed = Type.Object({ t: Type.Literal('init_failed'), code: Code, message: Message });
export const EcallResult = Type.Object({ t: Type.Literal('ecall_result'), id: Id, result: Type.Unknown() });
export const EcallFailure = Type.Object({ t: Type.Literal('ecall_error'), id: Id, code: Code, message: Message });
export const OcallRequest = Type.Object({ t: Type.Literal('ocall'), id: Id, name: Name, args: Type.Unknown() });
/** A one-way ocall (CallSpec.oneway): no id, no answer. */
export const OcallNotify = Type.Object({ t: Type.Literal('ocall_oneway'), name: Name, args: Type.Unknown() });
/** The answer to a host message that is not a well-formed envelope (it may have no usable id). */
export const ProtocolError = Type.Object({ t: Type.Literal('protocol_error'), code: Code, message: Message });
export const EnclaveToHost = Type.Union([
  Ready,
  InitFailed,
  EcallResult,
  EcallFailure,
  OcallRequest,
  OcallNotify,
  ProtocolError,
]);
export type EnclaveToHost = Static<typeof EnclaveToHost>;

// ---- enclave → platform ---------------------------------------------------------------------------
export const CounterReadRequest = Type.Object({ t: Type.Literal('counter_read'), id: Id });
/** Compare-and-set: succeeds only if the counter is still at `from`; `to` must be `from + 1`. */
export const CounterAdvanceRequest = Type.Object({
  t: Type.Literal('counter_advance'),
  id: Id,
  from: CounterValue,
  to: CounterValue,
  tag: Tag,
});
export const QuoteRequest = Type.Object({
  t: Type.Literal('quote'),
  id: Id,
  reportData: Type.Uint8Array({ minByteLength: 32, maxByteLength: 32 }),
  nonce: Type.Uint8Array({ minByteLength: 1, maxByteLength: 64 }),
});
export const DebugSecretAnswer = Type.Object({
  t: Type.Literal('debug_secret'),
  id: Id,
  value: Type.Union([Type.Uint8Array({ maxByteLength: 1 << 20 }), Type.Null()]),
});
export const EnclaveToPlatform = Type.Union([
  CounterReadRequest,
  CounterAdvanceRequest,
  QuoteRequest,
  DebugSecretAnswer,
]);
export type EnclaveToPlatform = Static<typeof EnclaveToPlatform>;

// ---- platform → enclave ---------------------------------------------------------------------------
export const CounterState = Type.Object({ value: CounterValue, tag: Tag });
export type CounterState = Static<typeof CounterState>;
export const PlatformReply = Type.Object({ t: Type.Literal('reply'), id: Id, value: Type.Unknown() });
export const PlatformFailure = Type.Object({ t: Type.Literal('fail'), id: Id, code: Code, message: Message });
export const DebugRead = Type.Object({ t: Type.Literal('debug_read'), id: Id, name: Name });
export const PlatformToEnclave = Type.Union([PlatformReply, PlatformFailure, DebugRead]);
export type PlatformToEnclave = Static<typeof PlatformToEnclave>;

/** The built-in ocalls (names outside the program namespace) the host serves with its SealedStore. */
export const BUILTIN_OCALLS = { storeSealed: '__store_sealed', loadSealed: '__load_sealed' } as const;

/** Compiled once per process (per isolate: the enclave compiles its own copy). */
export const checkHostToEnclave = TypeCompiler.Compile(HostToEnclave);
export const checkEnclaveToHost = TypeCompiler.Compile(EnclaveToHost);
export const checkEnclaveToPlatform = TypeCompiler.Compile(EnclaveToPlatform);
export const checkPlatformToEnclave = TypeCompiler.Compile(PlatformToEnclave);
export const checkCounterState = TypeCompiler.Compile(CounterState);

/** What the Platform hands to the worker at launch (via `workerData`; see platform.ts). */
export interface EnclaveBoot {
  readonly kind: 'teechain-enclave-sim/boot/v1';
  readonly measurement: string;
  readonly platformId: string;
  readonly counterId: string;
  readonly debug: boolean;
  /** The sealing key (HKDF of the platform secret and the measurement). The runtime zeroes this copy. */
  readonly sealingKey: Uint8Array;
  readonly platformPort: MessagePort;
}

/**
 * True if `value` contains an own `__proto__` key anywhere. Structured clone keeps such keys as own data
 * properties; they are harmless until a handler does `Object.assign` or a naive merge, so the runtime
 * refuses them at the boundary. Each object is visited once (clones may share references or be cyclic).
 */
export function hasPrototypeKey(value: unknown): boolean {
  const seen = new Set<object>();
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v) || seen.has(v)) continue;
    seen.add(v);
    if (Object.prototype.hasOwnProperty.call(v, '__proto__')) return true;
    if (v instanceof Map) for (const [k, x] of v) stack.push(k, x);
    else if (v instanceof Set) for (const x of v) stack.push(x);
    else for (const key of Object.keys(v)) stack.push((v as Record<string, unknown>)[key]);
  }
  return false;
}
