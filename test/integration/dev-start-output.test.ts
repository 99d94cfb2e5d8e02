import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';

const ENTRY = fileURLToPath(new URL('../helpers/dev-entry.ts', import.meta.url));

let child: ChildProcess | undefined;
afterEach(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  child = undefined;
});

/** Lines a user would have to wonder about: runtime warnings of Node or of a dependency. */
const WARNING = /WARNING|DeprecationWarning|ExperimentalWarning|\(node:\d+\) \w*Warning/;

describe('--dev start output', () => {
  it('prints no WARNING or DeprecationWarning line, at start, on the first request or at shutdown', async () => {
    const proc = spawn(process.execPath, ['--import', 'tsx', ENTRY], {
      env: { ...process.env, NODE_ENV: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let stdout = '';
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
    const curl = await new Promise<string>((resolve, reject) => {
      proc.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        const m = /curl -s -H "Authorization: Bearer ([^"]+)" (\S+)/.exec(stdout);
        if (m) resolve(`${m[1]} ${m[2]}`);
      });
      proc.on('close', () => reject(new Error(`--dev exited early:\n${stdout}\n${stderr}`)));
    });
    const [token, url] = curl.split(' ');
    // The printed request works (oidc-provider and the proxy both do real work, where lazy warnings appear).
    const res = await request(url!, { headers: { authorization: `Bearer ${token}` } });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    const lines = `${stdout}\n${stderr}`.split('\n');
    expect(lines.filter((l) => WARNING.test(l))).toEqual([]);
    expect(stdout).toContain('delegate-proxy --dev: NOT FOR PRODUCTION');
  });
});
