import { readFileSync } from 'node:fs';

/** Live objects in a V8 heap snapshot, by kind and constructor name, with their shallow sizes. */
export interface HeapCensus {
  readonly counts: Map<string, number>;
  readonly totalBytes: number;
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** Reads a `.heapsnapshot` (v8.writeHeapSnapshot) and counts what it holds. */
export function heapCensus(path: string): HeapCensus {
  const s = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt, width] = [
    fields.indexOf('type'),
    fields.indexOf('name'),
    fields.indexOf('self_size'),
    fields.length,
  ];
  const counts = new Map<string, number>();
  let totalBytes = 0;
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + typeAt] as number] as string;
    totalBytes += s.nodes[i + sizeAt] as number;
    if (type !== 'object' && type !== 'closure') continue;
    const key = `${type} ${s.strings[s.nodes[i + nameAt] as number]}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return { counts, totalBytes };
}

/** Kinds whose instance count grew by at least `threshold` from `a` to `b`. */
export function grownBy(a: HeapCensus, b: HeapCensus, threshold: number): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (const [key, n] of b.counts) {
    const d = n - (a.counts.get(key) ?? 0);
    if (d >= threshold) out.push([key, d]);
  }
  return out.sort((x, y) => y[1] - x[1]);
}
