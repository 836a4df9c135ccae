/** The live chart (uPlot): payments per second on the left axis, latency (mean and p95, ms) on the right. */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { RatePoint } from '../../src/dashboard/protocol.ts';

/** Points shown: the server keeps five minutes at one point a second. */
const MAX_POINTS = 300;

export class RateChart {
  private readonly data: [number[], Array<number | null>, Array<number | null>, Array<number | null>] = [
    [],
    [],
    [],
    [],
  ];
  private readonly plot: uPlot;

  constructor(private readonly el: HTMLElement) {
    this.plot = new uPlot(
      {
        width: this.width(),
        height: 220,
        scales: {
          x: { time: true },
          pps: { auto: true, range: (_u, _min, max) => [0, Math.max(10, max * 1.1)] },
          ms: { auto: true, range: (_u, _min, max) => [0, Math.max(5, max * 1.1)] },
        },
        axes: [
          {},
          { scale: 'pps', label: 'payments / s', size: 60 },
          { scale: 'ms', side: 1, label: 'latency (ms)', grid: { show: false }, size: 60 },
        ],
        series: [
          {},
          { label: 'payments/s', scale: 'pps', stroke: '#2563eb', fill: 'rgba(37,99,235,0.08)', width: 2 },
          { label: 'latency mean', scale: 'ms', stroke: '#ea580c', width: 1.5, spanGaps: false },
          { label: 'latency p95', scale: 'ms', stroke: '#dc2626', width: 1, dash: [4, 4], spanGaps: false },
        ],
        legend: { live: false },
      },
      this.data,
      el,
    );
    window.addEventListener('resize', () => this.plot.setSize({ width: this.width(), height: 220 }));
  }

  reset(points: RatePoint[]): void {
    for (const col of this.data) col.length = 0;
    for (const p of points.slice(-MAX_POINTS)) this.push(p, false);
    this.plot.setData(this.data);
  }

  add(p: RatePoint): void {
    this.push(p, true);
  }

  private push(p: RatePoint, redraw: boolean): void {
    const last = this.data[0].at(-1);
    if (last !== undefined && p.t <= last) return; // the same point again (history, then the live snapshot)
    this.data[0].push(p.t);
    this.data[1].push(p.payments_per_s);
    this.data[2].push(p.latency_ms);
    this.data[3].push(p.latency_p95_ms);
    if (this.data[0].length > MAX_POINTS) for (const col of this.data) col.shift();
    if (redraw) this.plot.setData(this.data);
  }

  private width(): number {
    return Math.max(300, this.el.clientWidth || 600);
  }
}
