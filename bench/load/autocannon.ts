import { spawn } from 'node:child_process';
import { BENCH_DIR, type CpuLayout, pinned } from '../lib/children.js';
import type { LoadResult, LoadSpec } from './result.js';

/** autocannon in a separate Node process (bench/load/autocannon-worker.ts). */
export async function runAutocannon(spec: LoadSpec, layout: CpuLayout): Promise<LoadResult> {
  const args = ['--import', 'tsx', `${BENCH_DIR}load/autocannon-worker.ts`, JSON.stringify(spec)];
  const [cmd, argv] = pinned(layout, layout.rest, process.execPath, args);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => {
      text += c.toString('utf8');
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`autocannon exited with ${code}`))));
  });
  const line = out.split('\n').find((l) => l.startsWith('AUTOCANNON_JSON '));
  if (!line) throw new Error(`autocannon printed no summary: ${out}`);
  return JSON.parse(line.slice('AUTOCANNON_JSON '.length)) as LoadResult;
}
