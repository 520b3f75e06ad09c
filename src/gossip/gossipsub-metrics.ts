// Gossipsub's own metrics (mesh churn, RPC counts, scores, message delivery, IWANT/IHAVE, …) on a prom-client
// Registry: @libp2p/gossipsub takes a `metricsRegister` that makes its gauges, histograms and avg/min/max series.
// Its series are named `gossipsub_*`; the ClusterSet topic is labelled `clusterset` (a ClusterSet has one topic).
import type { MetricsRegister } from '@libp2p/gossipsub/metrics';
import { Gauge, Histogram, type Registry } from 'prom-client';

type Labels = Record<string, string | number>;
type AnyConfig = { name: string; help: string; labelNames?: readonly string[]; buckets?: readonly number[] };

/** A gossipsub MetricsRegister whose metrics land on `registry`. */
export function gossipsubMetricsRegister(registry: Registry): MetricsRegister {
  const gauge = (config: AnyConfig) => {
    const collects: ((g: unknown) => void)[] = [];
    const g: Gauge<string> = new Gauge({
      name: config.name,
      help: config.help,
      labelNames: [...(config.labelNames ?? [])],
      registers: [registry],
      collect() {
        for (const c of collects) c(wrapped);
      },
    });
    const wrapped = {
      inc: (a?: Labels | number, b?: number) => (typeof a === 'object' ? g.inc(a, b ?? 1) : g.inc(a ?? 1)),
      set: (a: Labels | number, b?: number) => (typeof a === 'object' ? g.set(a, b ?? 0) : g.set(a)),
      addCollect: (fn: (g: unknown) => void) => {
        collects.push(fn);
      },
    };
    return wrapped;
  };
  const histogram = (config: AnyConfig) => {
    const h: Histogram<string> = new Histogram({
      name: config.name,
      help: config.help,
      labelNames: [...(config.labelNames ?? [])],
      ...(config.buckets === undefined ? {} : { buckets: [...config.buckets] }),
      registers: [registry],
    });
    return {
      startTimer: () => h.startTimer() as () => void,
      observe: (a: Labels | number, b?: number) => (typeof a === 'object' ? h.observe(a, b ?? 0) : h.observe(a)),
      reset: () => h.reset(),
    };
  };
  // Average, minimum and maximum of a set of values (peer scores): one gauge with a `stat` label.
  const avgMinMax = (config: AnyConfig) => {
    const labelNames = [...(config.labelNames ?? []), 'stat'];
    const g = new Gauge({ name: config.name, help: config.help, labelNames, registers: [registry] });
    const setAll = (labels: Labels, values: readonly number[]) => {
      if (values.length === 0) {
        for (const stat of ['avg', 'min', 'max']) g.set({ ...labels, stat }, 0);
        return;
      }
      let sum = 0;
      let min = Infinity;
      let max = -Infinity;
      for (const v of values) {
        sum += v;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      g.set({ ...labels, stat: 'avg' }, sum / values.length);
      g.set({ ...labels, stat: 'min' }, min);
      g.set({ ...labels, stat: 'max' }, max);
    };
    return {
      set: (a: Labels | readonly number[], b?: readonly number[]) =>
        Array.isArray(a) ? setAll({}, a) : setAll(a as Labels, b ?? []),
    };
  };
  return { gauge, histogram, avgMinMax } as unknown as MetricsRegister;
}

/** The label of each topic in gossipsub's metrics. */
export const gossipsubTopicLabels = (topic: string): Map<string, string> => new Map([[topic, 'clusterset']]);
