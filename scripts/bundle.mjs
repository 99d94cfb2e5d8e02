// Bundles the CLI (src/main.ts and its dependencies) into dist/cli.js, the file bin/delegate-proxy.js
// runs. One file instead of ~300 modules: fewer files to resolve, read and compile at start, and
// unused exports of zod, jose and yaml left out (-2.5 MB of idle RSS measured on Node 24,
// docs/operations.md "Memory"). The library API (`exports` in package.json) stays tsc's dist/ tree.
//
// Whitespace and syntax minified, identifiers kept, no source map: stack traces name the original
// functions. Mangled identifiers would save under 1 MB more; a source map, once loaded by the image's
// --enable-source-maps, costs +26 MB of RSS for this bundle (measured), so there is none.
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
  minifyWhitespace: true,
  minifySyntax: true,
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
