import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { type CliProcess, startCli, started, writeConfig } from '../helpers/cli-process.js';
import { useClosers } from '../helpers/closers.js';
import { waitFor } from '../helpers/raw-http.js';
import { CLIENT_ID, startAs } from '../helpers/start-as.js';
import { startUpstream } from '../helpers/start-upstream.js';

const closers = useClosers();

interface Outcome {
  readonly id: string;
  readonly status?: number;
  readonly error?: string;
  readonly reusedSocket?: boolean;
}

function send(agent: http.Agent, url: string, token: string, id: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent, headers: { authorization: `Bearer ${token}`, 'x-request-id': id } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ id, status: res.statusCode ?? 0 }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ id, error: err.code ?? err.message }));
    });
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ id, error: err.code ?? err.message, reusedSocket: req.reusedSocket }),
    );
  });
}

describe('SIGTERM under load (real child process)', () => {
  it('40 keep-alive clients through drain and close: every request the proxy accepted is answered 200; the process exits 0', async () => {
    const as = await startAs();
    closers.push(() => as.close());
    const upstream = await startUpstream((_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
      }, 10);
    });
    closers.push(() => upstream.close());
    const file = writeConfig({
      listen: '127.0.0.1:0',
      admin: '127.0.0.1:0',
      authorizationServer: { tokenEndpoint: as.tokenEndpoint, clientId: CLIENT_ID, clientSecretFile: as.secretFile },
      shutdown: { drainDelaySeconds: 1, gracePeriodSeconds: 10 },
      routes: [{ name: 'app', match: { pathPrefix: '/' }, upstream: upstream.url, scopes: ['documents:read'] }],
    });
    const cli: CliProcess = startCli(['--config', file]);
    closers.push(() => cli.stop());
    const { url } = await started(cli);
    const token = await as.userToken('alice', ['documents:read']);

    const outcomes: Outcome[] = [];
    let n = 0;
    let stop = false;
    const loop = async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        while (!stop) {
          const o = await send(agent, `${url}/load`, token, `r${n++}`);
          outcomes.push(o);
          // Refused: the listener is closed, this client moves on (as it would to another pod).
          if (o.error === 'ECONNREFUSED') return;
        }
      } finally {
        agent.destroy();
      }
    };
    const loops = Array.from({ length: 40 }, loop);
    await waitFor(() => outcomes.length >= 200, 30_000, 'traffic');
    expect(cli.child.kill('SIGTERM')).toBe(true);
    expect(await cli.exited).toEqual({ code: 0, signal: null });
    stop = true;
    await Promise.all(loops);

    const seen = new Set(upstream.requests.map((r) => String(r.headers['x-request-id'])));
    const answered = outcomes.filter((o) => o.status !== undefined);
    expect(answered.every((o) => o.status === 200)).toBe(true);
    // No request was sent on a connection the proxy then closed under it (keep-alive must not be
    // offered once the listener closed).
    expect(outcomes.filter((o) => o.error !== undefined && o.reusedSocket === true)).toEqual([]);
    // Zero accepted requests lost: none that reached the upstream went unanswered.
    expect(outcomes.filter((o) => o.error !== undefined && seen.has(o.id))).toEqual([]);
    // Clients saw only clean refusals (and at most the kernel's reset of connections still in the
    // listen queue at the moment of close, which the proxy never accepted).
    expect(
      outcomes.filter((o) => o.error !== undefined && o.error !== 'ECONNREFUSED' && o.error !== 'ECONNRESET'),
    ).toEqual([]);
    expect(answered.length).toBeGreaterThanOrEqual(200);
  }, 60_000);
});
