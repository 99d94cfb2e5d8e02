import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import {
  BIN,
  ROOT,
  type ShippedCli,
  shippedCliBuilt,
  startShippedCli,
  writeMinimalConfig,
} from '../helpers/shipped-cli.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';

/** The image's ENTRYPOINT (exec form), with /app/ mapped to this checkout. */
function imageCommand(): string[] {
  const line = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('ENTRYPOINT '));
  if (!line) throw new Error('Dockerfile has no ENTRYPOINT');
  return (JSON.parse(line.slice('ENTRYPOINT '.length)) as string[]).map((a) => a.replace(/^\/app\//, `${ROOT}/`));
}

/** `npm start`: package.json's start script (a plain command, no shell syntax). */
function npmStartCommand(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  return pkg.scripts.start.split(' ').map((a) => (a === 'bin/delegate-proxy.js' ? BIN : a));
}

/** Node/V8 flags of a running node process: its command line between the executable and the script. */
function nodeFlags(cli: ShippedCli): string[] {
  const cmd = cli.cmdline();
  return cmd.slice(1, cmd.indexOf(BIN));
}

describe.skipIf(!shippedCliBuilt())('the CLI applies its Node settings whatever starts it', () => {
  const closers = useClosers();
  let as: TestAuthorizationServer;
  let config: ReturnType<typeof writeMinimalConfig>;
  beforeAll(async () => {
    as = await startAs();
    config = writeMinimalConfig(as.tokenEndpoint, 'http://127.0.0.1:9', 'test-secret with space+and:colon~');
  });
  afterAll(async () => {
    config.remove();
    await as.close();
  });

  async function start(command: string[]): Promise<ShippedCli> {
    const cli = await startShippedCli([...command, '--config', config.file]);
    closers.push(() => cli.close());
    return cli;
  }

  it('npm start runs with the same flags as the image, the young generation capped, in the same process', async () => {
    const image = await start(imageCommand());
    const npmStart = await start(npmStartCommand());
    expect(nodeFlags(npmStart)).toEqual(nodeFlags(image));
    expect(nodeFlags(image)).toContain('--max-semi-space-size=16');
    // Re-executed in place: the process the test spawned is the proxy (signals reach it directly).
    expect(npmStart.cmdline()).toContain(BIN);
  });

  it('a plain `node bin/delegate-proxy.js` (npx) gets the settings too', async () => {
    const plain = await start(['node', BIN]);
    expect(nodeFlags(plain)).toContain('--max-semi-space-size=16');
  });

  it('a semi-space size on the command line wins', async () => {
    const own = await start(['node', '--max-semi-space-size=8', BIN]);
    expect(nodeFlags(own)).toEqual(['--max-semi-space-size=8']);
  });
});
