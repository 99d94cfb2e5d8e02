// Bundles the CLI (src/main.ts and its dependencies) into dist/cli.js, the file bin/delegate-proxy.js
// runs, and dist/cli-chunks/ for what only some configs load (Redis for `fleet`: -0.5 MB of idle RSS
// without it, measured). One file instead of ~300 modules: fewer files to resolve, read and compile
// at start, and unused exports of zod, jose and yaml left out (-2.5 MB of idle RSS measured on
// Node 24, docs/operations.md "Memory"). The library API (`exports` in package.json) stays tsc's dist/ tree.
//
// Minified, with an external source map that nothing loads (no sourceMappingURL comment): a source map
// loaded by the image's --enable-source-maps costs +26 MB of RSS for this bundle (measured), and
// minifying identifiers saves 6 MB against whitespace-only minification (measured). To read a stack
// trace from production, map it offline with dist/cli.js.map.
//
// Left outside the bundle: pino (its transports start worker files by path), oidc-provider and the
// --dev setup (loaded only by --dev, from tsc's dist/dev/), and pino-pretty (optional).
import { readFile, rm } from 'node:fs/promises';
import { build } from 'esbuild';

// Modules of dependencies that load Node built-ins the proxy may never use, rewritten so that the
// built-in loads on first use. esbuild wraps each CommonJS module so that it runs on its first
// require(), so deferring the require() defers the module. The build fails when a line is not found
// (the dependency changed), rather than loading it eagerly again.
// - undici requires its HTTP/2 client when it loads, and node:http2 loads node:tls with it (+7.6 MB in
//   an empty process, 2 MB of the proxy's idle RSS, measured on Node 24); the proxy uses it only when
//   an upstream negotiates HTTP/2.
// - ioredis loads node:tls for a `rediss://` URL that most fleets do not use (3 MB of RSS with `fleet`).
const FIRST_USE = [
  {
    file: /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client\.js$/,
    line: "const connectH2 = require('./client-h2.js')",
    lazy: "const connectH2 = (client, socket) => require('./client-h2.js')(client, socket)",
  },
  {
    file: /[\\/]ioredis[\\/]built[\\/]connectors[\\/](StandaloneConnector|SentinelConnector[\\/]index)\.js$/,
    line: 'const tls_1 = require("tls");',
    lazy: 'const tls_1 = { get connect() { return require("tls").connect; } };',
  },
];
const firstUse = {
  name: 'built-ins-on-first-use',
  setup(b) {
    for (const { file, line, lazy } of FIRST_USE) {
      b.onLoad({ filter: file }, async (args) => {
        const source = await readFile(args.path, 'utf8');
        if (!source.includes(line)) {
          return {
            errors: [{ text: `${args.path}: expected "${line}" (the package changed; review scripts/bundle.mjs)` }],
          };
        }
        return { contents: source.replace(line, lazy), loader: 'js' };
      });
    }
  },
};

await rm('dist/cli-chunks', { recursive: true, force: true });
await build({
  entryPoints: { cli: 'src/main.ts' },
  outdir: 'dist',
  splitting: true,
  chunkNames: 'cli-chunks/[name]-[hash]',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  minify: true,
  // Licence comments go to dist/cli.js.LEGAL.txt: one non-ASCII character in them makes V8 hold the
  // whole source as a two-byte string (+1.5 MB of idle RSS measured).
  legalComments: 'external',
  sourcemap: 'external',
  external: ['pino', 'pino-pretty', 'oidc-provider'],
  // CommonJS dependencies (undici, prom-client) call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  plugins: [
    firstUse,
    {
      name: 'dev-setup-outside',
      setup(b) {
        b.onResolve({ filter: /\/dev\/dev-setup\.js$/ }, () => ({ path: './dev/dev-setup.js', external: true }));
      },
    },
  ],
  logLevel: 'warning',
});
