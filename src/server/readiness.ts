import { type Dispatcher, request } from 'undici';

export interface ReadinessState {
  readonly ready: boolean;
  readonly reasons: readonly string[];
}

export interface Readiness {
  state(): ReadinessState;
  /** Marks the process as draining: readiness answers 503 from now on. */
  drain(): void;
  /** Runs the authorization-server probe now and then every `intervalMs`. */
  start(): Promise<void>;
  stop(): void;
}

export interface ReadinessOptions {
  /** Where to check that the AS answers (token endpoint; any HTTP answer counts as reachable). */
  readonly probeUrl: () => string;
  readonly dispatcher: Dispatcher;
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  readonly onChange?: (state: ReadinessState) => void;
}

/**
 * /readyz: ready when config is loaded (this object exists only then), the authorization server
 * has answered the latest probe, and the process is not draining.
 */
export function createReadiness(options: ReadinessOptions): Readiness {
  let asReachable = false;
  let asReason = 'authorization server not checked yet';
  let draining = false;
  let timer: NodeJS.Timeout | undefined;

  const state = (): ReadinessState => {
    const reasons: string[] = [];
    if (draining) reasons.push('draining');
    if (!asReachable) reasons.push(asReason);
    return { ready: reasons.length === 0, reasons };
  };

  const probe = async (): Promise<void> => {
    const before = state().ready;
    const url = options.probeUrl();
    try {
      const res = await request(url, {
        method: 'GET',
        dispatcher: options.dispatcher,
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      await res.body.dump();
      asReachable = res.statusCode < 500;
      asReason = asReachable ? '' : `authorization server answered ${res.statusCode}`;
    } catch (err) {
      asReachable = false;
      asReason = `authorization server unreachable: ${(err as Error).message}`;
    }
    if (state().ready !== before) options.onChange?.(state());
  };

  return {
    state,
    drain() {
      draining = true;
    },
    async start() {
      await probe();
      const tick = () => {
        timer = setTimeout(() => void probe().finally(tick), options.intervalMs ?? 10_000);
        timer.unref();
      };
      tick();
    },
    stop() {
      if (timer) clearTimeout(timer);
    },
  };
}
