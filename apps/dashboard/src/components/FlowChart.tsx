import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { POLL_MS } from '../use-poll.ts';

/** Points of the throughput chart: the last five minutes at one point per poll. */
export const HISTORY = (5 * 60_000) / POLL_MS;

export function FlowChart({ history }: { history: [number[], number[], number[]] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    if (!box.current) return;
    plot.current = new uPlot(
      {
        width: box.current.clientWidth,
        height: 180,
        series: [{}, { label: 'confirmed/s', stroke: '#1a7f37', width: 2 }, { label: 'rejected/s', stroke: '#cf222e', width: 2 }],
        axes: [{}, { label: 'orders/s' }],
        // Always the five minutes up to the latest sample (or now, before the first): left to
        // itself, uPlot spreads no sample or a single one over years.
        scales: {
          x: {
            time: true,
            range: (self) => {
              const latest = self.data[0]?.at(-1) ?? Date.now() / 1000;
              return [latest - (HISTORY * POLL_MS) / 1000, latest];
            },
          },
        },
      },
      [[], [], []],
      box.current,
    );
    const resize = () => plot.current?.setSize({ width: box.current?.clientWidth ?? 300, height: 180 });
    window.addEventListener('resize', resize);
    return () => {
      window.removeEventListener('resize', resize);
      plot.current?.destroy();
    };
  }, []);
  useEffect(() => plot.current?.setData(history), [history]);
  return <div ref={box} className="chart" role="img" aria-label="Orders confirmed and rejected per second over the last five minutes" />;
}
