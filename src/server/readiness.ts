import type { Dispatcher } from 'undici';
import { request } from '../http/undici.js';

export interface ReadinessState {
  readonly ready: boolean;
  /** Why not ready, each as `name: reason` (e.g. `draining`, `authorization_server: unreachable ...`). */
  readonly reasons: readonly string[];
}

/**
 * A named readiness condition: returns undefined when satisfied, else a short reason (shown in the
 * /readyz body and logged; never put a secret or token in it). Called on every /readyz request, so
 * it must be cheap and synchronous: keep the result of any I/O in a variable and return that.
 */
export type ReadinessCheck = () => string | undefined;

export interface Readiness {
  state(): ReadinessState;
  /**
   * Registers a condition (e.g. `discovery`, `jwks`). Registering a name again replaces it; the
   * returned function removes it.
   */
  addCheck(name: string, check: ReadinessCheck): () => void;
  /** Marks the process as draining: readiness answers 503 from now on. */
  drain(): void;
  readonly draining: boolean;
  /** Runs the authorization-server probe now and then every `intervalMs`. */
  start(): Promise<void>;
  /** Runs the authorization-server probe once, now; resolves with the resulting state. */
  probe(): Promise<ReadinessState>;
  stop(): void;
}

export interface ReadinessOptions {
  /** Where to check that the AS answers (token endpoint; any HTTP answer below 500 counts as reachable). */
  readonly probeUrl: () => string;
  readonly dispatcher: Dispatcher;
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** Called with the first probe's state and then whenever `ready` flips (for a log line). */
  readonly onChange?: (state: ReadinessState) => void;
}

const AS_CHECK = 'authorization_server';

/**
 * /readyz (docs/design.md "Admin listener"): ready when config is loaded (this object exists only then),
 * the authorization server answered the latest probe, every registered check passes, and the
 * process is not draining.
 */
export function createReadiness(options: ReadinessOptions): Readiness {
  let asReason: string | undefined = 'not checked yet';
  let draining = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  // undefined until the first probe: its result is always reported, ready or not.
  let lastReady: boolean | undefined;
  const checks = new Map<string, ReadinessCheck>([[AS_CHECK, () => asReason]]);

  const state = (): ReadinessState => {
    const reasons: string[] = [];
    if (draining) reasons.push('draining');
    for (const [name, check] of checks) {
      let reason: string | undefined;
      try {
        reason = check();
      } catch (err) {
        reason = `check failed: ${(err as Error).message}`;
      }
      if (reason !== undefined) reasons.push(`${name}: ${reason}`);
    }
    return { ready: reasons.length === 0, reasons };
  };

  const notify = (): ReadinessState => {
    const s = state();
    if (s.ready !== lastReady) {
      lastReady = s.ready;
      options.onChange?.(s);
    }
    return s;
  };

  const probe = async (): Promise<ReadinessState> => {
    try {
      const res = await request(options.probeUrl(), {
        method: 'GET',
        dispatcher: options.dispatcher,
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      asReason = await judge(res.statusCode, res.body);
    } catch (err) {
      asReason = `unreachable (${describe(err)})`;
    }
    return notify();
  };

  return {
    state,
    addCheck(name, check) {
      checks.set(name, check);
      return () => {
        if (checks.get(name) === check) checks.delete(name);
      };
    },
    drain() {
      draining = true;
      notify();
    },
    get draining() {
      return draining;
    },
    probe,
    async start() {
      await probe();
      const tick = () => {
        if (stopped) return;
        timer = setTimeout(() => void probe().finally(tick), options.intervalMs ?? 10_000);
        timer.unref();
      };
      tick();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/** Bytes of a probe answer read to check it is JSON; a token endpoint's answers are small. */
const MAX_PROBE_BODY = 16 * 1024;

/**
 * Why the probe answer says the AS is not usable, or undefined. 5xx: down. 4xx: a token endpoint
 * refusing a bare GET (RFC 6749 §3.2 allows POST only): up. 2xx must be JSON: a 200 HTML page is
 * a maintenance page or a captive portal in front of the AS, not a token endpoint.
 */
async function judge(status: number, body: Dispatcher.ResponseData['body']): Promise<string | undefined> {
  if (status >= 500) {
    await body.dump();
    return `answered HTTP ${status}`;
  }
  if (status >= 300) {
    await body.dump();
    return undefined;
  }
  let text = '';
  for await (const chunk of body) {
    text += (chunk as Buffer).toString('utf8');
    if (text.length > MAX_PROBE_BODY) {
      body.destroy();
      break;
    }
  }
  try {
    const value: unknown = JSON.parse(text);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return undefined;
  } catch {
    // falls through
  }
  return `answered HTTP ${status} without a JSON body`;
}

/** A short cause without URLs' query strings or stacks: `ECONNREFUSED`, `timeout`, or the message. */
function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timeout';
  return e?.code ?? e?.cause?.code ?? (err instanceof Error ? err.message : String(err));
}
