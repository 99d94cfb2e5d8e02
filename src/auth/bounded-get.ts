import type { Dispatcher } from 'undici';
import { readBoundedText } from '../http/read-bounded.js';
import { request } from '../http/undici.js';

/** Metadata and key sets are small; anything larger is refused rather than buffered. */
export const MAX_METADATA_BYTES = 256 * 1024;

export interface BoundedResponse {
  readonly status: number;
  readonly text: string;
}

/**
 * GET over the authorization server's dispatcher, under a timeout, reading at most `maxBytes` of
 * the body. Redirects are not followed: metadata and keys must come from the configured URL.
 */
export async function boundedGet(
  url: string,
  options: { dispatcher: Dispatcher; timeoutMs: number; maxBytes?: number; signal?: AbortSignal | undefined },
): Promise<BoundedResponse> {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const res = await request(url, {
    method: 'GET',
    headers: { accept: 'application/json' },
    dispatcher: options.dispatcher,
    signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
  });
  const limit = options.maxBytes ?? MAX_METADATA_BYTES;
  const text = await readBoundedText(res.body, limit, `response from ${url}`);
  return { status: res.statusCode, text };
}
