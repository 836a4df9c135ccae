/**
 * The action forms: each POSTs JSON to the dashboard server, which carries it out through a node's REST
 * API with the token it holds. The answer is shown as the API gave it: `code: message` on an error.
 */
import { esc, sat, short } from './format.ts';

export type Shown = (html: string, ok: boolean) => void;

/**
 * The fields of an action's answer that are shown (each action's route answers a few of them), and the
 * error of a failed one. Read from the wire, so every field is optional.
 */
interface ActionAnswer {
  status?: string;
  payment_id?: string;
  failure_code?: string;
  amount_sat?: number;
  channel_id?: string;
  local_balance_sat?: string;
  txid?: string;
  fee_sat?: string | number;
  deposit_id?: string;
  value_sat?: string;
  blocks?: unknown[];
  height?: number;
  error?: { code?: string; message?: string };
}

export async function postAction(name: string, body: Record<string, unknown>, show: Shown): Promise<unknown> {
  show(`${esc(name)}…`, true);
  let res: Response;
  try {
    res = await fetch(`./api/actions/${name}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (err) {
    show(`${esc(name)}: the dashboard server did not answer (${esc(String(err))})`, false);
    return null;
  }
  const answer = (await res.json().catch(() => null)) as ActionAnswer | null;
  if (!res.ok || answer === null) {
    const e = answer?.error;
    show(
      `<b>${esc(name)} failed</b> (HTTP ${res.status}) <code data-testid="error-code">${esc(String(e?.code ?? 'error'))}</code>: ${esc(String(e?.message ?? ''))}`,
      false,
    );
    return null;
  }
  show(describe(name, answer), answer.status !== 'failed');
  return answer;
}

function describe(name: string, a: ActionAnswer): string {
  switch (name) {
    case 'pay':
      return a.status === 'failed'
        ? `payment ${esc(String(a.payment_id))} <b>failed</b>: <code data-testid="error-code">${esc(String(a.failure_code))}</code>`
        : `payment ${esc(String(a.payment_id))} of ${sat(String(a.amount_sat))} sat: <b>${esc(String(a.status))}</b>`;
    case 'open':
      return `channel <code>${esc(short(a.channel_id, 16))}</code> opened: local ${sat(a.local_balance_sat)} sat`;
    case 'settle':
      return `settled: txid <code data-testid="settle-txid">${esc(String(a.txid))}</code>, fee ${sat(String(a.fee_sat))} sat`;
    case 'fund':
      return `deposit ${esc(String(a.deposit_id))}: ${sat(a.value_sat)} sat, ${esc(String(a.status))}`;
    case 'mine':
      return `mined ${a.blocks?.length ?? 0} block(s): height ${esc(String(a.height))}`;
    default:
      return esc(JSON.stringify(a));
  }
}

/** Wires a form: its named fields (numbers where the input is type=number) become the action's body. */
export function wireForm(form: HTMLFormElement, action: string, show: Shown): void {
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const body: Record<string, unknown> = {};
    for (const el of Array.from(form.elements)) {
      if (!(el instanceof HTMLInputElement || el instanceof HTMLSelectElement) || !el.name) continue;
      // Whole numbers only (sats, blocks): Number() of an integer string is exact below 2^53.
      body[el.name] = el instanceof HTMLInputElement && el.type === 'number' ? Number(el.value) : el.value;
    }
    const button = form.querySelector('button');
    if (button) button.disabled = true;
    void postAction(action, body, show).finally(() => {
      if (button) button.disabled = false;
    });
  });
}
