import { hash } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Logger } from 'pino';

export interface ActorToken {
  readonly token: string;
  readonly type: string;
  /** SHA-256 of the token: part of the cache key, so a rotated identity gets new tokens. */
  readonly hash: string;
}

export interface ActorTokenSource {
  current(): ActorToken | undefined;
  close(): void;
}

/**
 * The agent's own identity (RFC 8693 §2.1 actor_token), read from a file that the kubelet rotates
 * (projected service-account token). The file is polled; a failed re-read keeps the last good token.
 */
export function createActorTokenSource(options: {
  file: string;
  type: string;
  logger: Logger;
  pollIntervalMs?: number;
}): ActorTokenSource {
  const read = (): ActorToken | undefined => {
    try {
      const token = readFileSync(options.file, 'utf8').trim();
      if (token === '') return undefined;
      return { token, type: options.type, hash: hash('sha256', token, 'base64url') };
    } catch (err) {
      options.logger.error({ file: options.file, err: (err as Error).message }, 'cannot read actor token file');
      return undefined;
    }
  };
  let current = read();
  watchFile(options.file, { interval: options.pollIntervalMs ?? 2_000, persistent: false }, () => {
    const next = read();
    if (next && next.hash !== current?.hash) {
      current = next;
      options.logger.info({ file: options.file }, 'actor token reloaded');
    }
  });
  return {
    current: () => current,
    close: () => unwatchFile(options.file),
  };
}
