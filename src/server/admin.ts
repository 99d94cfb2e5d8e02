import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { sendJson } from '../http/send-json.js';
import type { Readiness } from './readiness.js';

export interface AdminDeps {
  readonly registry: Registry;
  readonly readiness: Readiness;
  readonly logger: Logger;
  /** `/step-up` routes (src/step-up/admin-routes.ts); returns false for paths it does not own. */
  readonly stepUp?: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  /** `/revocations` and `/ssf/events` (src/revocation/admin-routes.ts); false for other paths. */
  readonly revocation?: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
}

/** The admin listener: /metrics, /healthz, /readyz (docs/design.md "Admin listener"). */
export function createAdminHandler(deps: AdminDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (deps.stepUp?.(req, res)) return;
    if (deps.revocation?.(req, res)) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: 'method_not_allowed' });
      return;
    }
    switch (path) {
      case '/metrics':
        deps.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': deps.registry.contentType });
            res.end(text);
          },
          (err: unknown) => {
            deps.logger.error({ err }, 'metrics collection failed');
            sendJson(res, 500, { error: 'metrics_failed' });
          },
        );
        return;
      case '/healthz':
        sendJson(res, 200, { status: 'ok' });
        return;
      case '/readyz': {
        const s = deps.readiness.state();
        sendJson(res, s.ready ? 200 : 503, s.ready ? { status: 'ready' } : { status: 'not_ready', reasons: s.reasons });
        return;
      }
      default:
        sendJson(res, 404, { error: 'not_found' });
    }
  };
}
