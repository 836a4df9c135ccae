/**
 * The dashboard page: listens to the server's event stream (one snapshot per poll) and draws the network,
 * the tables and the live chart; the forms and buttons send actions back. It holds no token or key.
 */
import type { ChannelSnapshot, History, Snapshot } from '../../src/dashboard/protocol.ts';
import { postAction, wireForm, type Shown } from './actions.ts';
import { RateChart } from './chart.ts';
import { num, sat, short } from './format.ts';
import { drawGraph } from './graph.ts';
import { syncRows } from './rows.ts';
import './style.css';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const chart = new RateChart($('chart'));
const result = $('action-result');
const show: Shown = (html, ok) => {
  result.innerHTML = html;
  result.className = `result ${ok ? 'ok' : 'err'}`;
};
wireForm($<HTMLFormElement>('pay-form'), 'pay', show);
wireForm($<HTMLFormElement>('open-form'), 'open', show);
wireForm($<HTMLFormElement>('fund-form'), 'fund', show);
wireForm($<HTMLFormElement>('mine-form'), 'mine', show);

let nodeNames = '';

function render(s: Snapshot): void {
  $('height').textContent = num(s.chain.height);
  $('height').title = s.chain.error ?? '';
  fillNodeSelects(s.nodes.map((n) => n.name));
  drawGraph($<HTMLElement>('graph') as unknown as SVGSVGElement, s.nodes, s.channels);
  if (s.rate) {
    chart.add(s.rate);
    $('rate-now').textContent =
      `${s.rate.payments_per_s.toFixed(1)} payments/s · mean ${s.rate.latency_ms === null ? '–' : `${s.rate.latency_ms} ms`} · p95 ≤ ${s.rate.latency_p95_ms === null ? '–' : `${s.rate.latency_p95_ms} ms`}`;
  }

  syncRows(
    $('nodes'),
    s.nodes.map((n) => ({
      key: n.name,
      cells: [
        { text: n.name, title: n.error ?? '', className: n.reachable ? '' : 'bad' },
        { text: short(n.node_id, 16), title: n.node_id },
        {
          text: !n.reachable
            ? 'unreachable'
            : n.attestation.verified
              ? `✓ verified ${short(n.attestation.measurement, 8)}`
              : '✗ not verified',
          title: n.attestation.detail,
          className: n.attestation.verified ? 'good' : 'bad',
        },
        { text: num(n.block_height) },
        { text: num(n.num_peers) },
        { text: sat(n.deposits.free_sat), className: 'num' },
        { text: sat(n.deposits.in_channels_sat), className: 'num' },
        { text: sat(n.deposits.pending_sat), className: 'num' },
        { text: `${n.payments.sent_succeeded} / ${n.payments.sent_failed}`, className: 'num' },
        { text: String(n.payments.received), className: 'num' },
      ],
    })),
    'no nodes',
    10,
  );

  syncRows(
    $('channels'),
    s.channels.map((c) => ({
      key: c.channel_id,
      cells: [
        { text: short(c.channel_id, 12), title: c.channel_id },
        { text: c.status + (c.status === 'open' && !c.peer_connected ? ' (peer offline)' : ''), className: c.status },
        { text: c.a.node },
        { text: sat(c.a.balance_sat), className: 'num bal-a' },
        { text: c.b.node },
        { text: sat(c.b.balance_sat), className: 'num bal-b' },
        { text: c.settlement_txid ?? '–', title: c.settled_by ? `settled by ${c.settled_by}` : '', className: 'txid' },
        { text: num(c.settlement_confirmations) },
      ],
      actions: () => settleButton(c, s),
    })),
    'no channels',
    9,
  );
  for (const c of s.channels) {
    const button = document.querySelector<HTMLButtonElement>(`#channels tr[data-key="${c.channel_id}"] button`);
    if (button) button.hidden = c.status === 'closed';
  }

  syncRows(
    $('deposits'),
    s.deposits.map((d) => ({
      key: `${d.node}/${d.deposit_id}`,
      cells: [
        { text: d.node },
        { text: d.deposit_id },
        { text: d.status === 'in_channel' ? 'in channel' : d.status, className: d.status },
        { text: sat(d.value_sat), className: 'num' },
        {
          text: d.outpoint ? short(d.outpoint, 16) + d.outpoint.slice(d.outpoint.indexOf(':')) : '–',
          title: d.outpoint ?? '',
        },
        { text: num(d.confirmations), className: 'num' },
        {
          text:
            d.status === 'settled' ? `spent by ${short(d.spent_by, 12)}` : d.channel_id ? short(d.channel_id, 12) : '–',
          title: d.spent_by ?? d.channel_id ?? '',
        },
      ],
    })),
    'no deposits',
    7,
  );

  syncRows(
    $('committees'),
    s.committees.flatMap((c) =>
      c.members.map((m) => ({
        key: `${c.node}/${m.node_id}`,
        cells: [
          { text: c.node, title: `committee ${c.committee_id} (${c.detail})` },
          { text: m.name, title: m.node_id },
          { text: m.role, className: m.role },
          { text: m.connected ? 'yes' : 'no', className: m.connected ? 'up' : 'down' },
          { text: m.reachable ? `${num(m.acked_seq)} / ${num(m.seq)}` : 'not answering', className: 'num' },
          { text: num(m.epoch), className: 'num' },
          { text: m.rest_url ?? '–', title: 'as its host gave it (a hint, not attested)' },
        ],
      })),
    ),
    s.committees.length === 0
      ? 'No committees in this network (committee chains are not enabled on these nodes).'
      : 'no committee member answered',
    7,
  );
  const changes = $('view-changes');
  const lines = s.view_changes.map(
    (v) => `${new Date(v.at).toLocaleTimeString()} ${v.node}: view ${v.epoch}, primary ${v.primary}`,
  );
  if (changes.dataset.lines !== lines.join('\n')) {
    changes.dataset.lines = lines.join('\n');
    changes.replaceChildren(
      ...(lines.length ? lines : ['none seen since the dashboard started']).map((text) => {
        const li = document.createElement('li');
        li.textContent = text;
        return li;
      }),
    );
  }
}

function settleButton(c: ChannelSnapshot, s: Snapshot): HTMLElement {
  const b = document.createElement('button');
  b.textContent = 'Settle';
  b.dataset.testid = 'settle';
  // Either side may settle alone; the opener is asked when it is one of our nodes.
  const node = s.nodes.some((n) => n.name === c.a.node) ? c.a.node : c.b.node;
  b.addEventListener('click', () => {
    b.disabled = true;
    void postAction('settle', { node, channel_id: c.channel_id }, show).finally(() => {
      b.disabled = false;
    });
  });
  return b;
}

function fillNodeSelects(names: string[]): void {
  const key = names.join(',');
  if (key === nodeNames) return;
  nodeNames = key;
  for (const sel of Array.from(document.querySelectorAll<HTMLSelectElement>('select.node-select'))) {
    sel.innerHTML = '';
    for (const n of names) sel.add(new Option(n, n));
  }
  // A sensible first choice: pay from the first node to the second.
  for (const form of ['pay-form', 'open-form']) {
    const to = document.querySelector<HTMLSelectElement>(`#${form} select[name=to]`);
    if (to && names.length > 1) to.value = names[1]!;
  }
}

function connect(): void {
  const live = $('live');
  const events = new EventSource('./api/events');
  events.addEventListener('open', () => {
    live.textContent = 'live';
    live.className = 'live on';
  });
  events.addEventListener('error', () => {
    live.textContent = 'reconnecting…';
    live.className = 'live off';
  });
  events.addEventListener('history', (e) =>
    chart.reset((JSON.parse((e as MessageEvent<string>).data) as History).points),
  );
  events.addEventListener('snapshot', (e) => {
    render(JSON.parse((e as MessageEvent<string>).data) as Snapshot);
    document.body.dataset.snapshotAt = String(Date.now());
  });
}

connect();
