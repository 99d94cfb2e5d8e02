import type { Dispatcher } from 'undici';
import { readBoundedText } from '../http/read-bounded.js';
import { request } from '../http/undici.js';
import { SIGNATURE_HEADER, signBody, TIMESTAMP_HEADER } from './signature.js';

// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/g;

/** What the webhook's own answer says about the decision. */
export type WebhookAnswer =
  | {
      readonly kind: 'decision';
      readonly decision: 'approved' | 'denied';
      readonly approver: string | undefined;
      readonly bodySha256: string | undefined;
    }
  | { readonly kind: 'pending' };

export interface WebhookOptions {
  readonly url: string;
  readonly dispatcher: Dispatcher;
  /** Signs each POST (same headers as callbacks) so the receiver can tell it came from this proxy. */
  readonly secret: string | undefined;
  readonly now: () => number;
}

const MAX_ANSWER_BYTES = 16 * 1024;
export const MAX_APPROVER_LENGTH = 128;

/**
 * POSTs one JSON event to the approval webhook. `signal` bounds the call (the approval's own
 * expiry, or a short timeout for notices). Throws on network errors and non-2xx answers.
 */
export async function postWebhook(options: WebhookOptions, event: object, signal: AbortSignal): Promise<WebhookAnswer> {
  const body = JSON.stringify(event);
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (options.secret !== undefined) {
    const ts = Math.floor(options.now() / 1000);
    headers[TIMESTAMP_HEADER] = String(ts);
    headers[SIGNATURE_HEADER] = signBody(options.secret, ts, body);
  }
  const res = await request(options.url, { method: 'POST', dispatcher: options.dispatcher, headers, body, signal });
  const text = await readBoundedText(res.body, MAX_ANSWER_BYTES, 'approval webhook answer');
  if (res.statusCode === 202 || res.statusCode === 204) return { kind: 'pending' };
  if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`approval webhook answered ${res.statusCode}`);
  return parseAnswer(text);
}

/** `{"decision":"approved"|"denied","approver":"..."}`; anything else (no decision yet) is pending. */
export function parseAnswer(text: string): WebhookAnswer {
  if (text.trim() === '') return { kind: 'pending' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error('approval webhook answered 2xx with a body that is not JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new Error('approval webhook answer is not a JSON object');
  const o = parsed as Record<string, unknown>;
  if (o.decision === undefined || o.decision === 'pending') return { kind: 'pending' };
  if (o.decision !== 'approved' && o.decision !== 'denied')
    throw new Error('approval webhook answer has an unknown decision');
  return {
    kind: 'decision',
    decision: o.decision,
    approver: cleanApprover(o.approver),
    bodySha256: typeof o.bodySha256 === 'string' ? o.bodySha256 : undefined,
  };
}

/** A printable, bounded approver name for the audit log, or undefined. */
export function cleanApprover(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const clean = value.replace(CONTROL_CHARACTERS, '').trim().slice(0, MAX_APPROVER_LENGTH);
  return clean === '' ? undefined : clean;
}
