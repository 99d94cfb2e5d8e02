import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { createProxy } from './app.js';
import { loadConfigFile } from './config/load.js';
import { ConfigError } from './errors.js';
import { createLogger, resolveLogging } from './observability/logger.js';
import { collectStartupGarbage } from './server/collections.js';
import { createConfigReloader } from './server/reload.js';
import { drainAndClose } from './server/shutdown.js';
import { VERSION } from './version.js';

const HELP = `delegate-proxy ${VERSION}: a sidecar that swaps the user's token for a delegated one (RFC 8693)

Usage: delegate-proxy [--config FILE] [--check-config] [--dev] [--version] [--help]

  --config FILE    config file (default: $DELEGATE_PROXY_CONFIG, then ./delegate-proxy.yaml)
  --check-config   validate the config, print every problem with its path, exit 0 or 1
  --dev            local try-out: embedded authorization server and echo upstream; never for production
  --version        print the version
  --help           this text
`;

const SIGNALS_HELP = `Signals: SIGTERM/SIGINT drain and exit (config \`shutdown\`), a second one exits at once;
SIGHUP reloads the config file (it is also reloaded when the file changes).
Environment: DELEGATE_PROXY_CONFIG, DELEGATE_PROXY_LOG_LEVEL, DELEGATE_PROXY_LOG_PRETTY.
`;

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function fail(text: string, code = 1): never {
  process.stderr.write(`${text}\n`);
  process.exit(code);
}

export async function main(argv: readonly string[]): Promise<void> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (err) {
    fail(`${(err as Error).message}\n\n${HELP}`, 2);
  }
  if (args.help) return out(`${HELP}\n${SIGNALS_HELP}`);
  if (args.version) return out(VERSION);
  if (args.dev) return startDev();

  const file = args.config ?? process.env.DELEGATE_PROXY_CONFIG ?? './delegate-proxy.yaml';
  if (!args.config && !process.env.DELEGATE_PROXY_CONFIG && !existsSync(file)) {
    fail(`no config: pass --config FILE, set DELEGATE_PROXY_CONFIG, or create ${file} (or try --dev)`);
  }
  let config: ReturnType<typeof loadConfigFile>;
  try {
    config = loadConfigFile(file, process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(`${file}: ${err.message}`);
    throw err;
  }
  const logging = resolveLogging(config.logging, process.env);
  if ('problems' in logging) fail(logging.problems.join('\n'));
  if (args['check-config']) {
    return out(`${file}: configuration OK (${config.routes.length} route${config.routes.length === 1 ? '' : 's'})`);
  }
  const logger = createLogger({ level: logging.level, pretty: logging.pretty });
  const proxy = createProxy(config, { logger });
  await proxy.start();
  collectStartupGarbage();
  const reloader = createConfigReloader({
    file,
    env: process.env,
    logger,
    running: config,
    apply: (next) => proxy.applyConfig(next),
    ...(logging.levelPinned
      ? {}
      : {
          setLogLevel: (level: string) => {
            logger.level = level;
          },
        }),
  });
  process.on('SIGHUP', () => reloader.reload('SIGHUP'));
  handleSignals(proxy.logger, (signal) => {
    reloader.close();
    return drainAndClose(proxy, proxy.runtime().shutdown, signal);
  });
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: {
      config: { type: 'string' },
      'check-config': { type: 'boolean' },
      dev: { type: 'boolean' },
      version: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  }).values;
}

function handleSignals(logger: Logger, shutdown: (signal: string) => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal while draining: exiting now');
      process.exit(1);
    }
    stopping = true;
    shutdown(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** The `--dev` ports (README "Try it"); tests pass 0s to run the same start on free ports. */
const DEV_PORTS = { proxyPort: 8080, adminPort: 9090, asPort: 9400, upstreamPort: 9401, mcpPort: 9402 };

export async function startDev(ports: typeof DEV_PORTS = DEV_PORTS): Promise<void> {
  const { startDevSetup } = await import('./dev/dev-setup.js');
  const host = process.env.DELEGATE_PROXY_DEV_HOST ?? '127.0.0.1';
  const setup = await startDevSetup({ host, ...ports });
  out(
    [
      '',
      'delegate-proxy --dev: NOT FOR PRODUCTION (embedded authorization server, in-memory client secret)',
      `  proxy         ${setup.proxyUrl}   route /echo -> demo upstream ${setup.upstream.url} (scope documents:read)`,
      `                ${' '.repeat(setup.proxyUrl.length)}   route /mcp  -> MCP server ${setup.mcp.url}/mcp (SDK v2; 2026-07-28 and 2025-11-25)`,
      `  admin         ${setup.adminUrl}   /metrics /healthz /readyz`,
      `  auth server   ${setup.as.issuer}`,
      '',
      'Send a request as user "alice"; the demo upstream answers with the delegated token it received:',
      '',
      `  ${setup.curl}`,
      '',
      'Call the MCP tool "whoami" (it shows the delegated token the MCP server got), in either protocol era:',
      '',
      `  TOKEN=${setup.userToken}`,
      `  ${setup.mcpCurls.modern}`,
      `  ${setup.mcpCurls.legacy}`,
      '',
      'More: docs/mcp.md "Try it" (the SDK v2 client, the policy at work).',
      '',
    ].join('\n'),
  );
  handleSignals(setup.proxy.logger, (signal) => {
    setup.proxy.logger.info({ signal }, 'shutting down');
    return setup.close();
  });
}
