/**
 * The live line on stderr, once a second: elapsed time, payments per second in the last second and on
 * average, p50 / p99 of the last second's succeeded payments, and failures by code so far. On a terminal
 * it rewrites itself in place; otherwise (a log, a test reading stderr) each second is its own line.
 */
import { percentile } from '../bench/stats.ts';
import type { Recorder } from './recorder.ts';

export function startProgress(recorder: Recorder, out: NodeJS.WriteStream = process.stderr): () => void {
  let lastOk = 0;
  let lastT = recorder.elapsedS();
  const tick = () => {
    const t = recorder.elapsedS();
    const now = (recorder.ok - lastOk) / Math.max(1e-3, t - lastT);
    lastOk = recorder.ok;
    lastT = t;
    const recent = Float64Array.from(recorder.recent).sort();
    recorder.recent = [];
    out.write(`${out.isTTY ? '\r\x1b[K' : ''}${progressLine(recorder, t, now, recent)}${out.isTTY ? '' : '\n'}`);
  };
  const timer = setInterval(tick, 1000);
  return () => {
    clearInterval(timer);
    if (out.isTTY) out.write('\n');
  };
}

export function progressLine(r: Recorder, t: number, nowPerS: number, recent: Float64Array): string {
  const ms = (x: number) => (Number.isNaN(x) ? '-' : `${x.toFixed(1)} ms`);
  const failures = [...r.failedByCode.entries()].map(([code, n]) => `${code} ${n}`).join(', ');
  return [
    `${t.toFixed(0).padStart(4)} s`,
    `${r.ok} ok`,
    `${Math.round(nowPerS)}/s now`,
    `${Math.round(r.ok / Math.max(1e-3, t))}/s avg`,
    `p50 ${ms(percentile(recent, 50))}`,
    `p99 ${ms(percentile(recent, 99))}`,
    `unknown ${r.unknown.size}`,
    `busy retries ${r.busyRetries}`,
    `failed ${r.failed()}${failures ? ` (${failures})` : ''}`,
  ].join('  ');
}
