// The compiled dist/ (what `delegate-proxy` runs; `npm run bench` and `npm run soak` build it first),
// not src/ through tsx: tsx's transform wraps every closure in a naming helper that costs several µs
// per request.
type App = typeof import('../../src/app.js');
type Load = typeof import('../../src/config/load.js');
type Log = typeof import('../../src/observability/logger.js');

const dist = (file: string) => new URL(`../../dist/${file}`, import.meta.url).href;

export const { createProxy } = (await import(dist('app.js'))) as App;
export const { resolveConfig } = (await import(dist('config/load.js'))) as Load;
export const { createLogger } = (await import(dist('observability/logger.js'))) as Log;
