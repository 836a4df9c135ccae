/**
 * One payment of a stress run: `POST /v1/payments {dest, amount_sat, idempotency_key}` on the payer's
 * primary, and what its answer says about the money. Every payment has its own key, so asking again
 * later (to learn how one in flight or cut off ended) answers the same payment and never pays twice.
 */
import type { ApiClient } from '../cli/client.ts';

export type Outcome =
  /** The payee's enclave acknowledged it (multi-hop: released): the payer's history has `paymentId`. */
  | { kind: 'succeeded'; paymentId: string; route?: string[]; feeSat?: number }
  /** Refused or failed, with the API's code: nothing moved. */
  | { kind: 'failed'; code: string }
  /** Not known yet: in flight when the node answered, or no answer at all (`code` says which). */
  | { kind: 'unknown'; code: string };

/** Longer than the node's own 10 s wait before it answers `in_flight`, so that an answer always comes first. */
const REQUEST_TIMEOUT_MS = 30_000;

/** A payment's answer: the single route's whole body, or one entry of a batch's `results`. */
interface EntryAnswer {
  status?: string;
  payment_id?: string;
  failure_code?: string | null;
  route?: string[];
  fee_sat?: number;
}

function outcomeOf(answer: EntryAnswer): Outcome {
  if (answer.status === 'succeeded' && typeof answer.payment_id === 'string')
    return {
      kind: 'succeeded',
      paymentId: answer.payment_id,
      ...(Array.isArray(answer.route) ? { route: answer.route } : {}),
      ...(typeof answer.fee_sat === 'number' ? { feeSat: answer.fee_sat } : {}),
    };
  if (answer.status === 'failed') return { kind: 'failed', code: answer.failure_code ?? 'failed' };
  return { kind: 'unknown', code: answer.status ?? 'no_status' };
}

export interface PaymentRequest {
  dest: string;
  amount_sat: number;
  /** Absent only with `--no-keys`. */
  idempotency_key?: string;
}

export async function sendPayment(api: ApiClient, body: PaymentRequest): Promise<Outcome> {
  let res: Response;
  try {
    res = await fetch(`${api.restUrl}/v1/payments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    const name = (err as Error).name;
    // No connection at all (a node down, its port closed): the request never reached it, nothing moved.
    if ((err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED')
      return { kind: 'failed', code: 'connection_refused' };
    return { kind: 'unknown', code: name === 'TimeoutError' ? 'client_timeout' : 'unreachable' };
  }
  let answer: EntryAnswer & { error?: { code?: string } };
  try {
    answer = (await res.json()) as typeof answer;
  } catch {
    return { kind: 'unknown', code: `http_${res.status}` };
  }
  if (res.ok) return outcomeOf(answer);
  const code = typeof answer.error?.code === 'string' ? answer.error.code : `http_${res.status}`;
  // A 4xx is a refusal or a definite failure: nothing moved (`409 path_timeout` included: the round
  // aborted on the payer's wait, every hop kept the old state). A 5xx may have come after the payment left
  // (`504 timeout`, a session torn down), so it stays unknown until the payer's own records say how it ended.
  return res.status < 500 ? { kind: 'failed', code } : { kind: 'unknown', code };
}

/**
 * A batch request's refusals that come before any of its entries starts (the route checks them first):
 * nothing moved for any entry. Any other error answer may have come after some entries left, so each
 * entry stays unknown until asked again by its key.
 */
const BATCH_REFUSED_WHOLE = new Set([
  'invalid_argument',
  'idempotency_conflict',
  'not_primary',
  'unauthorized',
  'forbidden',
]);

/**
 * Many payments in one `POST /v1/payments/batch` (each entry with its own idempotency key): each entry's
 * outcome, in the order given, read exactly as `sendPayment` reads a single answer.
 */
export async function sendBatch(api: ApiClient, entries: PaymentRequest[]): Promise<Outcome[]> {
  const all = (o: Outcome) => entries.map(() => o);
  let res: Response;
  try {
    res = await fetch(`${api.restUrl}/v1/payments/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ payments: entries }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED')
      return all({ kind: 'failed', code: 'connection_refused' });
    return all({ kind: 'unknown', code: (err as Error).name === 'TimeoutError' ? 'client_timeout' : 'unreachable' });
  }
  let answer: { results?: EntryAnswer[]; error?: { code?: string } };
  try {
    answer = (await res.json()) as typeof answer;
  } catch {
    return all({ kind: 'unknown', code: `http_${res.status}` });
  }
  if (!res.ok) {
    const code = typeof answer.error?.code === 'string' ? answer.error.code : `http_${res.status}`;
    return all(
      res.status < 500 && BATCH_REFUSED_WHOLE.has(code) ? { kind: 'failed', code } : { kind: 'unknown', code },
    );
  }
  const results = answer.results;
  // An answer that does not account for every entry says nothing sure about any of them.
  if (!Array.isArray(results) || results.length !== entries.length) return all({ kind: 'unknown', code: 'bad_answer' });
  return results.map(outcomeOf);
}
