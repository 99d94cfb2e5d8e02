import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ChildMessage } from '../servers/child.js';

export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));

/** Which CPUs the system under test and everything else (load tool, upstream, AS) run on. */
export interface CpuLayout {
  readonly pinned: boolean;
  readonly cores: number;
  /** The process being measured. */
  readonly sut: string;
  /** Load generator, upstream (when not measured itself), authorization server. */
  readonly rest: string;
}

export function cpuLayout(): CpuLayout {
  const cores = availableParallelism();
  const wanted = process.env.BENCH_PIN !== '0';
  const hasTaskset = existsSync('/usr/bin/taskset') || existsSync('/bin/taskset');
  if (!wanted || !hasTaskset || cores < 2) return { pinned: false, cores, sut: '', rest: '' };
  const rest = [0, ...Array.from({ length: cores - 2 }, (_, i) => i + 2)].join(',');
  return { pinned: true, cores, sut: '1', rest };
}

/** argv prefix that runs a command on `cpus` (or as is when not pinned). */
export function pinned(layout: CpuLayout, cpus: string, cmd: string, args: string[]): [string, string[]] {
  return layout.pinned ? ['taskset', ['-c', cpus, cmd, ...args]] : [cmd, args];
}

/** Moves a running process (all its threads) to `cpus`. */
export function repin(layout: CpuLayout, pid: number, cpus: string): void {
  if (layout.pinned) execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly info: { readonly url: string; readonly [k: string]: unknown };
  request<T>(op: string, arg?: unknown): Promise<T>;
  stop(): Promise<void>;
}

/** Starts `bench/servers/<script>` in its own Node process and waits for its `ready` message. */
export async function startChild(
  name: string,
  script: string,
  options: unknown,
  spawnOptions: { layout: CpuLayout; cpus: string; nodeFlags?: string[]; env?: Record<string, string> },
): Promise<Child> {
  const args = [
    ...(spawnOptions.nodeFlags ?? []),
    '--import',
    'tsx',
    `${BENCH_DIR}servers/${script}`,
    JSON.stringify(options),
  ];
  const [cmd, argv] = pinned(spawnOptions.layout, spawnOptions.cpus, process.execPath, args);
  const child = spawn(cmd, argv, {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, ...spawnOptions.env, NODE_ENV: 'production' },
  });
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let nextId = 1;
  const info = await new Promise<Child['info']>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 60 s`)), 60_000);
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve(m);
      } else if (m.type === 'reply') {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.error !== undefined) p?.reject(new Error(`${name}: ${m.error}`));
        else p?.resolve(m.value);
      }
    });
  });
  if (child.pid === undefined) throw new Error(`${name} has no pid`);
  return {
    name,
    pid: child.pid,
    info,
    request<T>(op: string, arg?: unknown): Promise<T> {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.send({ type: 'request', id, op, arg });
      });
    },
    stop: () => stopProcess(child, () => child.disconnect()),
  };
}

/** Asks a child to end (IPC disconnect or SIGTERM), then kills it by pid after 5 s. */
export function stopProcess(child: ChildProcess, ask: () => void): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      ask();
    } catch {
      child.kill('SIGTERM');
    }
  });
}
