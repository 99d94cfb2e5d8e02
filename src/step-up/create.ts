import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { ActorTokenSource } from '../auth/actor-token.js';
import type { TokenService } from '../auth/token-service.js';
import type { ResolvedConfig } from '../config/load.js';
import type { Fleet } from '../fleet/fleet.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../pipeline/clock.js';
import { realTimer, type Timer } from '../pipeline/timer.js';
import { createStepUpAdmin } from './admin-routes.js';
import { ApprovalService } from './approvals.js';
import { FleetInbox, localInbox } from './inbox.js';
import { StepUp } from './step.js';

export interface StepUpWiring {
  /** Pipeline step 6 and the onChallenge retry plan. */
  readonly step: StepUp;
  /** `/step-up` on the admin listener; returns false for other paths. Undefined without `stepUp`. */
  readonly admin: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  readonly approvals: ApprovalService | undefined;
  /** Withdraws pending approvals (shutdown). */
  close(): void;
}

export interface StepUpWiringDeps {
  readonly tokens: TokenService;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly actor: ActorTokenSource | undefined;
  /** For the approval webhook (the same injected undici dispatcher as the AS calls). */
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
  readonly timer?: Timer | undefined;
  /** Fleet mode: one approval inbox for every pod (docs/fleet.md "Approvals"). */
  readonly fleet?: Fleet | undefined;
}

/** Builds step-up from the top-level `stepUp` settings (fixed until restart). */
/** The part of the config step-up reads: its own block and its callback secret. */
export type StepUpConfigSlice = Pick<ResolvedConfig, 'stepUp'> & {
  readonly secrets: Pick<ResolvedConfig['secrets'], 'stepUpCallbackSecret'>;
};

export function createStepUp(config: StepUpConfigSlice, deps: StepUpWiringDeps): StepUpWiring {
  const settings = config.stepUp?.approval;
  const logger = deps.logger.child({ component: 'step-up' });
  const secret = config.secrets.stepUpCallbackSecret;
  let fleetInbox: FleetInbox | undefined;
  const approvals =
    settings === undefined
      ? undefined
      : new ApprovalService({
          webhookUrl: settings.webhookUrl,
          timeoutSeconds: settings.timeoutSeconds,
          callbackBaseUrl: settings.callbackBaseUrl,
          secret,
          dispatcher: deps.dispatcher,
          clock: deps.clock,
          timer: deps.timer ?? realTimer,
          metrics: deps.metrics,
          logger,
          onPending: (a) => fleetInbox?.pending(a),
          onSettled: (a) => fleetInbox?.settled(a),
        });
  if (approvals !== undefined && deps.fleet !== undefined) {
    fleetInbox = new FleetInbox({
      approvals,
      fleet: deps.fleet,
      clock: deps.clock,
      metrics: deps.metrics,
      logger,
    });
  }
  return {
    step: new StepUp({
      approvals,
      tokens: deps.tokens,
      metrics: deps.metrics,
      clock: deps.clock,
      actor: deps.actor,
      approvalPageUrl:
        settings?.callbackBaseUrl === undefined ? undefined : `${settings.callbackBaseUrl.replace(/\/+$/, '')}/step-up`,
    }),
    admin:
      approvals === undefined
        ? undefined
        : createStepUpAdmin({ inbox: fleetInbox ?? localInbox(approvals), secret, clock: deps.clock, logger }),
    approvals,
    close: () => approvals?.close(),
  };
}
