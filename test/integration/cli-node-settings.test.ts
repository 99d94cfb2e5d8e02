import { setTimeout } from 'node:timers/promises';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useClosers } from '../helpers/closers.js';
import {
  BIN,
  imageCommand,
  npmStartCommand,
  type ShippedCli,
  shippedCliBuilt,
  startShippedCli,
  writeMinimalConfig,
} from '../helpers/shipped-cli.js';
import { startAs, type TestAuthorizationServer } from '../helpers/start-as.js';

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

  async function start(command: string[], env: Record<string, string> = {}): Promise<ShippedCli> {
    const cli = await startShippedCli([...command, '--config', config.file], 15_000, env);
    closers.push(() => cli.close());
    return cli;
  }

  it('npm start runs with the same flags as the image, the young generation capped, in the same process', async () => {
    const image = await start(imageCommand());
    const npmStart = await start(npmStartCommand());
    expect(nodeFlags(npmStart)).toEqual(nodeFlags(image));
    expect(nodeFlags(image)).toContain('--max-semi-space-size=4');
    // Re-executed in place: the process the test spawned is the proxy (signals reach it directly).
    expect(npmStart.cmdline()).toContain(BIN);
  });

  it('a plain `node bin/delegate-proxy.js` (npx) gets the settings too', async () => {
    const plain = await start(['node', BIN]);
    expect(nodeFlags(plain)).toContain('--max-semi-space-size=4');
  });

  it('a semi-space size on the command line wins', async () => {
    const own = await start(['node', '--max-semi-space-size=8', BIN]);
    expect(nodeFlags(own)).toContain('--max-semi-space-size=8');
    expect(nodeFlags(own)).not.toContain('--max-semi-space-size=4');
    // Re-executed all the same, for glibc's settings.
    expect(own.environ()).toMatchObject({ MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' });
  });

  it("glibc's malloc settings are in the environment it runs with; an operator's own value wins", async () => {
    const image = await start(imageCommand());
    expect(image.environ()).toMatchObject({
      MALLOC_ARENA_MAX: '2',
      MALLOC_MMAP_THRESHOLD_: '131072',
      MALLOC_TRIM_THRESHOLD_: '131072',
    });
    const own = await start(imageCommand(), { MALLOC_ARENA_MAX: '4' });
    expect(own.environ()).toMatchObject({ MALLOC_ARENA_MAX: '4', MALLOC_MMAP_THRESHOLD_: '131072' });
  });

  /** The tiers V8 compiled for under load, after the start line (--trace-opt names each target). */
  async function tiersUnderLoad(cli: ShippedCli): Promise<Set<string>> {
    const url = /"listen":"(http:[^"]+)"/.exec(cli.output())?.[1];
    expect(url).toBeDefined();
    // Unauthenticated requests: the routing and challenge code runs hot without an exchange.
    for (let i = 0; i < 3000; i++) {
      const res = await request(`${url}/docs/a`);
      await res.body.dump();
    }
    await setTimeout(500);
    // From the start line on: before its re-exec, the first process image runs with Node's defaults.
    const afterStart = cli.output().slice(cli.output().indexOf('delegate-proxy started'));
    return new Set(afterStart.match(/target [A-Z_]+/g));
  }

  it('under load V8 optimizes with TurboFan only: Maglev stays off after start (docs/operations.md "Memory")', async () => {
    // --trace-opt is no tier flag, so the CLI still chooses the tiers.
    const targets = await tiersUnderLoad(await start(['node', '--trace-opt', BIN]));
    expect(targets).toContain('target TURBOFAN_JS');
    expect(targets).not.toContain('target MAGLEV');
  });

  it('a tier flag on the command line leaves the tiers to it, through the re-exec', async () => {
    const targets = await tiersUnderLoad(await start(['node', '--trace-opt', '--no-turbofan', BIN]));
    expect(targets).not.toContain('target TURBOFAN_JS');
    expect(targets).toContain('target MAGLEV');
  });

  it('another Node flag on the command line (memory saver mode, docs/operations.md) is kept through the re-exec', async () => {
    const saver = await start(['node', '--memory-saver-mode', BIN]);
    expect(nodeFlags(saver)).toContain('--memory-saver-mode');
    expect(nodeFlags(saver)).toContain('--max-semi-space-size=4');
  });
});
