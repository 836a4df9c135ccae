// run-tests lane: in-process
/**
 * The chart of a stress run, without a network: the latency histogram's log-spaced buckets hold every
 * latency once and in its bucket; the SVG drawn from a report (built by the report's own code from recorded
 * outcomes) is well-formed XML with no external reference, one bar group per second of `throughput[]` and
 * one bar per bucket, each carrying the report's counts, p50/p99 and the faults marked; a sweep's chart has
 * one bar per size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reportChart, sweepChart } from '../src/stress/chart.ts';
import { latencyHistogram } from '../src/stress/histogram.ts';
import { Recorder } from '../src/stress/recorder.ts';
import { buildReport, type StressReport } from '../src/stress/report.ts';
import type { Verification } from '../src/stress/verify.ts';
import { prng, testSeed } from './helpers/seeded.ts';

/**
 * Checks that `xml` is well-formed (one root element, every element closed in order, quoted attributes
 * once each, only the five predefined or numeric entities) and returns its elements with their attributes.
 */
function parseXml(xml: string): Array<{ name: string; attrs: Record<string, string> }> {
  const elements: Array<{ name: string; attrs: Record<string, string> }> = [];
  const open: string[] = [];
  let roots = 0;
  const text = (s: string) => {
    assert.ok(!/[<>]/.test(s), `stray < or > in text: ${s.slice(0, 40)}`);
    for (const m of s.matchAll(/&([^;]*);?/g))
      assert.match(m[0], /^&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);$/, `bad entity ${m[0]}`);
  };
  let rest = xml.replace(/^<\?xml [^?]*\?>\s*/, '');
  while (rest.length > 0) {
    const lt = rest.indexOf('<');
    if (lt < 0) {
      text(rest);
      assert.equal(rest.trim(), '', 'text after the root');
      break;
    }
    text(rest.slice(0, lt));
    if (open.length === 0) assert.equal(rest.slice(0, lt).trim(), '', 'text outside the root');
    const gt = rest.indexOf('>', lt);
    assert.ok(gt > lt, 'an unclosed tag');
    const tag = rest.slice(lt + 1, gt);
    rest = rest.slice(gt + 1);
    if (tag.startsWith('/')) {
      assert.equal(open.pop(), tag.slice(1).trim(), `</${tag.slice(1)}> closes another element`);
      continue;
    }
    const m = /^([A-Za-z][\w.:-]*)((?:\s+[A-Za-z][\w.:-]*="[^"<]*")*)\s*(\/?)$/.exec(tag);
    assert.ok(m, `malformed tag <${tag}>`);
    const attrs: Record<string, string> = {};
    for (const a of m[2]!.matchAll(/([A-Za-z][\w.:-]*)="([^"]*)"/g)) {
      assert.ok(!(a[1]! in attrs), `attribute ${a[1]} twice in <${m[1]}>`);
      text(a[2]!);
      attrs[a[1]!] = a[2]!;
    }
    elements.push({ name: m[1]!, attrs });
    if (open.length === 0) roots++;
    if (m[3] !== '/') open.push(m[1]!);
  }
  assert.deepEqual(open, [], 'elements left open');
  assert.equal(roots, 1, 'one root element');
  return elements;
}

const verified: Verification = {
  ok: true,
  conservation: { before_sat: '1000', after_sat: '1000', holds: true },
  channels_checked: 3,
  channels_disagreeing: 0,
  payer_history: { checked: 0, missing: 0 },
  payee_history: { treasuries_checked: 4, mismatched: 0 },
  chaos: null,
  unchecked: [],
  mismatches: [],
};

/** A report built by the report's own code from `n` recorded outcomes with latencies spread over decades. */
function reportOf(n: number, seed: number): { report: StressReport; latencies: number[] } {
  const rand = prng(seed);
  const rec = new Recorder(4);
  const latencies: number[] = [];
  for (let seq = 0; seq < n; seq++) {
    const p = { seq, payer: seq % 4, payee: (seq + 1) % 4, amount: 1000 };
    if (rand() < 0.1) rec.record(p, { kind: 'failed', code: 'channel_busy' }, 5);
    else {
      const ms = 10 ** (rand() * 4 - 0.5); // 0.3 ms to 3 s
      latencies.push(ms);
      rec.record(p, { kind: 'succeeded', paymentId: `p${seq}` }, ms);
    }
  }
  const report = buildReport({
    startedAt: new Date(),
    loadS: 12,
    interrupted: false,
    network: {
      source: 'fresh',
      topology: 'star <&>',
      treasuries: ['alice', 'bob', 'carol', 'dave'],
      committee: 1,
      processes: 4,
      channels: 3,
      hosts: 'local',
      chain: '127.0.0.1:18443',
      addresses: [],
    },
    workload: {
      pattern: 'uniform',
      seed,
      amounts: { fixed_sat: 1000 },
      mode: 'closed',
      concurrency_per_payer: 2,
      max_per_request: 1,
      idempotency_keys: true,
      payments_limit: n,
      duration_limit_s: null,
    },
    submission: { max_per_request: 1, single_requests: n, batch_requests: 0, batched_payments: 0 },
    mode: { kind: 'closed', concurrency: 2 },
    recorder: rec,
    openLoop: null,
    usageBefore: [],
    usageAfter: [],
    memberNames: [],
    generatorCpuS: 0.1,
    verification: verified,
    chaos: { kill_mean_s: 3 },
    faults: [
      { at: 2.5, node: 'bob', kind: 'kill', restarted_at: 5.1, recovered_after_ms: 3000 },
      { at: 8, node: 'carol', kind: 'kill', restarted_at: null, recovered_after_ms: null, error: 'x' },
    ],
  });
  // The recorder counts by the wall clock (all of this in one second): a run of twelve seconds, as a report has them.
  report.throughput = Array.from({ length: 12 }, (_, t) => ({ t, ok: (t * 7) % 11, failed: t % 3 }));
  return { report, latencies };
}

test('latency histogram: log-spaced bucket edges, every latency counted once, in its bucket', () => {
  const seed = testSeed('latency histogram');
  const { latencies } = reportOf(2_000, seed);
  const h = latencyHistogram(latencies);
  assert.equal(h.counts.length, h.bounds_ms.length - 1);
  assert.equal(
    h.counts.reduce((a, b) => a + b, 0),
    latencies.length,
  );
  for (let i = 1; i < h.bounds_ms.length; i++) {
    assert.ok(h.bounds_ms[i]! > h.bounds_ms[i - 1]!);
    // Four buckets a decade: each edge about 1.778 times the one before.
    assert.ok(Math.abs(h.bounds_ms[i]! / h.bounds_ms[i - 1]! - 10 ** 0.25) < 0.01, String(h.bounds_ms[i]));
  }
  assert.ok(h.bounds_ms[0]! <= Math.min(...latencies));
  assert.ok(h.bounds_ms[h.bounds_ms.length - 1]! > Math.max(...latencies));
  const counted = h.counts.map(() => 0);
  for (const x of latencies) counted[h.bounds_ms.findIndex((b, i) => x >= b && x < h.bounds_ms[i + 1]!)]!++;
  assert.deepEqual(counted, h.counts);
  // Exactly on an edge: in the bucket that edge opens. One latency: one bucket. None: none.
  assert.deepEqual(latencyHistogram([10]), { bounds_ms: [10, 17.78], counts: [1] });
  assert.deepEqual(latencyHistogram([10, 17.78]), { bounds_ms: [10, 17.78, 31.62], counts: [1, 1] });
  assert.deepEqual(latencyHistogram([]), { bounds_ms: [], counts: [] });
});

test('the chart of a run: well-formed SVG, one bar group per second and one bar per bucket, with the report’s counts', () => {
  const seed = testSeed('stress chart');
  const { report, latencies } = reportOf(1_500, seed);
  assert.equal(
    report.latency_histogram.counts.reduce((a, b) => a + b, 0),
    latencies.length,
  );
  const svg = reportChart(report);
  const els = parseXml(svg);
  assert.equal(els[0]!.name, 'svg');
  assert.equal(els[0]!.attrs.xmlns, 'http://www.w3.org/2000/svg');
  // Self-contained: nothing fetched from elsewhere, no script.
  assert.ok(!/href|url\(|<script|<image|@import/i.test(svg), 'an external reference or a script');
  const seconds = els.filter((e) => e.attrs.class === 'second');
  assert.deepEqual(
    seconds.map((e) => ({
      t: Number(e.attrs['data-t']),
      ok: Number(e.attrs['data-ok']),
      failed: Number(e.attrs['data-failed']),
    })),
    report.throughput,
  );
  assert.equal(els.filter((e) => e.attrs.class === 'ok').length, report.throughput.length);
  assert.equal(els.filter((e) => e.attrs.class === 'failed').length, report.throughput.length);
  const buckets = els.filter((e) => e.attrs.class === 'bucket');
  const h = report.latency_histogram;
  assert.deepEqual(
    buckets.map((e) => Number(e.attrs['data-count'])),
    h.counts,
  );
  assert.deepEqual(
    buckets.map((e) => [Number(e.attrs['data-lo-ms']), Number(e.attrs['data-hi-ms'])]),
    h.counts.map((_, i) => [h.bounds_ms[i], h.bounds_ms[i + 1]]),
  );
  // Taller bars for larger counts: heights in proportion to the counts.
  const tallest = Math.max(...h.counts);
  const tallestH = Number(buckets[h.counts.indexOf(tallest)]!.attrs.height);
  buckets.forEach((e, i) => assert.ok(Math.abs(Number(e.attrs.height) - (tallestH * h.counts[i]!) / tallest) < 0.05));
  assert.equal(Number(els.find((e) => e.attrs.class === 'p50')!.attrs['data-ms']), report.p50_ms);
  assert.equal(Number(els.find((e) => e.attrs.class === 'p99')!.attrs['data-ms']), report.p99_ms);
  assert.deepEqual(
    els.filter((e) => e.attrs.class === 'fault').map((e) => [Number(e.attrs['data-at']), e.attrs['data-node']]),
    report.faults.map((f) => [f.at, f.node]),
  );
  // Text from the report is escaped, and the axes are labelled.
  assert.match(svg, /star &#60;&#38;&#62;/);
  for (const label of ['payments/s', 'seconds since the load started', 'latency, from the first attempt'])
    assert.ok(svg.includes(label), label);
});

test('the chart of a run with no answer at all, and of a sweep: still well-formed, one bar per size', () => {
  const { report } = reportOf(0, 1);
  report.throughput = [];
  report.faults = [];
  const els = parseXml(reportChart(report));
  assert.equal(els.filter((e) => e.attrs.class === 'second' || e.attrs.class === 'bucket').length, 0);
  const sizes = [
    { nodes: 2, payments_per_s: 40.5, verified: true },
    { nodes: 4, payments_per_s: 61, verified: false },
    { nodes: 8, payments_per_s: null, verified: false },
  ];
  const bars = parseXml(sweepChart('sweep: star', sizes)).filter((e) => e.attrs.class === 'size');
  assert.deepEqual(
    bars.map((e) => [Number(e.attrs['data-nodes']), e.attrs['data-payments-per-s'], e.attrs['data-verified']]),
    [
      [2, '40.5', 'true'],
      [4, '61', 'false'],
      [8, '', 'false'],
    ],
  );
});
