import { hash } from 'node:crypto';
import { type FSWatcher, readFileSync, unwatchFile, watch, watchFile } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';

export interface ActorToken {
  readonly token: string;
  readonly type: string;
  /** SHA-256 of the token: part of the cache key, so a rotated identity gets new tokens. */
  readonly hash: string;
}

export interface ActorTokenSource {
  current(): ActorToken | undefined;
  /** Re-reads the file now (also done on every change seen). */
  reload(): void;
  close(): void;
}

/** An actor token is a JWT or similar; anything this large is not one. */
const MAX_ACTOR_TOKEN_BYTES = 64 * 1024;

/**
 * The agent's own identity (RFC 8693 §2.1 actor_token), read from a file that the kubelet rotates
 * (projected service-account token). Two signals, because either alone misses cases: a directory
 * watch sees the kubelet's atomic `..data` symlink swap and renames at once; a stat poll catches
 * what inotify does not deliver (network file systems, some container runtimes). A failed or
 * empty re-read keeps the last good token: a rotation in progress must not drop the identity.
 */
export function createActorTokenSource(options: {
  file: string;
  type: string;
  logger: Logger;
  pollIntervalMs?: number;
}): ActorTokenSource {
  const { file, logger } = options;
  const read = (): ActorToken | undefined => {
    try {
      const token = readFileSync(file, 'utf8').trim();
      if (token === '') return undefined;
      if (token.length > MAX_ACTOR_TOKEN_BYTES || /\s/.test(token)) {
        logger.error({ file }, 'actor token file does not hold a single token; ignored');
        return undefined;
      }
      return { token, type: options.type, hash: hash('sha256', token, 'base64url') };
    } catch (err) {
      logger.error(
        { file, err: (err as NodeJS.ErrnoException).code ?? (err as Error).message },
        'cannot read actor token file',
      );
      return undefined;
    }
  };
  let current = read();
  const reload = () => {
    const next = read();
    if (next && next.hash !== current?.hash) {
      current = next;
      logger.info({ file }, 'actor token reloaded');
    }
  };

  watchFile(file, { interval: options.pollIntervalMs ?? 2_000, persistent: false }, reload);
  let watcher: FSWatcher | undefined;
  const name = basename(file);
  try {
    watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
      // The kubelet swaps `..data`; editors and `mv` touch the file's own name.
      if (changed === null || changed === name || changed.startsWith('..')) reload();
    });
    watcher.on('error', (err) =>
      logger.warn({ file, err: err.message }, 'actor token directory watch failed; polling only'),
    );
  } catch (err) {
    logger.warn({ file, err: (err as Error).message }, 'cannot watch the actor token directory; polling only');
  }

  return {
    current: () => current,
    reload,
    close() {
      unwatchFile(file, reload);
      watcher?.close();
    },
  };
}
