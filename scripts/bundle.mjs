// Bundles the CLI (src/main.ts and its dependencies) into dist/cli.js, the file bin/delegate-proxy.js
// runs, and dist/cli-chunks/ for what only some configs load (Redis for `fleet`: -0.5 MB of idle RSS
// without it, measured). One file instead of ~300 modules: fewer files to resolve, read and compile at start, and
// unused exports of zod, jose and yaml left out (-2.5 MB of idle RSS measured on Node 24,
// docs/operations.md "Memory"). The library API (`exports` in package.json) stays tsc's dist/ tree.
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

// undici requires its HTTP/2 client when it loads, and node:http2 loads node:tls with it: +7.6 MB of
// idle RSS measured on Node 24, for a protocol the proxy uses only when an upstream negotiates it.
// The bundle defers that module to its first HTTP/2 connection (esbuild wraps a CommonJS module so it
// runs on its first require). The build fails when undici's line changes, rather than loading it eagerly.
const UNDICI_H2_REQUIRE = "const connectH2 = require('./client-h2.js')";
const UNDICI_H2_LAZY = "const connectH2 = (client, socket) => require('./client-h2.js')(client, socket)";
const lazyHttp2 = {
  name: 'undici-http2-on-first-use',
  setup(b) {
    b.onLoad({ filter: /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!source.includes(UNDICI_H2_REQUIRE)) {
        return {
          errors: [
            { text: `${args.path}: expected "${UNDICI_H2_REQUIRE}" (undici changed; review the lazy HTTP/2 load)` },
          ],
        };
      }
      return { contents: source.replace(UNDICI_H2_REQUIRE, UNDICI_H2_LAZY), loader: 'js' };
    });
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
    lazyHttp2,
    {
      name: 'dev-setup-outside',
      setup(b) {
        b.onResolve({ filter: /\/dev\/dev-setup\.js$/ }, () => ({ path: './dev/dev-setup.js', external: true }));
      },
    },
  ],
  logLevel: 'warning',
});
