// Bundles the CLI (src/main.ts and its dependencies) into dist/cli.js, the file bin/delegate-proxy.js
// runs. One file instead of ~300 modules: fewer files to resolve, read and compile at start, and
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
import { build } from 'esbuild';

await build({
  entryPoints: ['src/main.ts'],
  outfile: 'dist/cli.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  minify: true,
  sourcemap: 'external',
  external: ['pino', 'pino-pretty', 'oidc-provider'],
  // CommonJS dependencies (undici, prom-client) call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  plugins: [
    {
      name: 'dev-setup-outside',
      setup(b) {
        b.onResolve({ filter: /\/dev\/dev-setup\.js$/ }, () => ({ path: './dev/dev-setup.js', external: true }));
      },
    },
  ],
  logLevel: 'warning',
});
