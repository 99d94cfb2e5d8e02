import { it } from 'vitest';
import { rawRequest } from '../helpers/raw-http.js';
import { startAs } from '../helpers/start-as.js';
import { startProxy } from '../helpers/start-proxy.js';
import { startUpstream } from '../helpers/start-upstream.js';
it('t', async () => {
  let t = performance.now();
  const lap = (n: string) => { console.log(n, Math.round(performance.now() - t)); t = performance.now(); };
  const as = await startAs(); lap('as');
  const up = await startUpstream(); lap('up');
  const proxy = await startProxy({ as, config: { routes: [{ name: 'd', match: { pathPrefix: '/docs' }, upstream: up.url }] } }); lap('proxy');
  const user = await as.userToken('alice', ['documents:read']); lap('token');
  await rawRequest(proxy.url, `GET /docs/../x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`); lap('raw');
  await proxy.close(); lap('pclose'); await as.close(); lap('asclose'); await up.close(); lap('upclose');
});
