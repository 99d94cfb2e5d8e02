import { request } from 'undici';
import { CALLBACK_SECRET } from './step-up-harness.js';

/**
 * Signs the approver `frank` in to the step-up page over plain HTTP, as its browser form would.
 * `cookie` is the session cookie to send back (`name=value`); `setCookie` the whole header.
 */
export async function signInApprover(adminUrl: string): Promise<{ status: number; setCookie: string; cookie: string }> {
  const res = await request(`${adminUrl}/step-up/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ approver: 'frank', secret: CALLBACK_SECRET }).toString(),
  });
  await res.body.dump();
  const setCookie = String(res.headers['set-cookie']);
  return { status: res.statusCode, setCookie, cookie: setCookie.split(';')[0]! };
}
