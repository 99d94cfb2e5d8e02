import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProxyError } from '../../src/errors.js';
import { checkRequestTarget } from '../../src/routing/request-target.js';
import { compileStepUp, matchRules } from '../../src/step-up/rules.js';

/** Spellings an upstream may normalize to a ruled path are refused or held, never let through. */
const step = compileStepUp({
  scopes: ['billing:write'],
  rules: [{ method: 'DELETE', pathPrefix: '/invoices' }],
  onChallenge: false,
});

const hex = (ch: string, upper: boolean) => {
  const h = ch.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${upper ? h.toUpperCase() : h}`;
};

/** One character of a segment: as is, case-flipped, or percent-encoded. */
const char = (ch: string) =>
  fc.oneof(
    fc.constant(ch),
    fc.constant(ch.toUpperCase()),
    fc.boolean().map((upper) => hex(ch, upper)),
    fc.boolean().map((upper) => hex(ch.toUpperCase(), upper)),
  );

const padding = fc
  .array(fc.constantFrom('%20', '%09', '%0a', '%0D', '%00', '%7f', '%c2%a0', '%e3%80%80'), { maxLength: 2 })
  .map((p) => p.join(''));
const suffix = fc.constantFrom('', '', '.json', '.XML', '%2ejson', ';jsessionid=1', '%3Bx', '.json;v=2', '%00.json');
const slashes = fc.constantFrom('/', '/', '//', '///');

/** `/invoices/42` spelled in one of the ways that servers normalize back to it. */
const spelling = fc
  .tuple(
    slashes,
    padding,
    fc.tuple(...[...'invoices'].map(char)),
    suffix,
    padding,
    slashes,
    fc.constantFrom('42', '', '42.json'),
    fc.constantFrom('', '?a=1', '?q=%00'),
  )
  .map(
    ([s1, pre, letters, ext, post, s2, rest, query]) =>
      `${s1}${pre}${letters.join('')}${ext}${post}${s2}${rest}${query}`,
  );

function refused(target: string): boolean {
  try {
    checkRequestTarget('DELETE', target);
    return false;
  } catch (err) {
    if (!(err instanceof ProxyError)) throw err;
    expect(err.code).toBe('invalid_request');
    expect(err.status).toBe(400);
    return true;
  }
}

describe('step-up path spellings property', () => {
  it('every generated spelling of DELETE /invoices/42 is refused at the target check or held by the rule', () => {
    let held = 0;
    let refusedCount = 0;
    fc.assert(
      fc.property(spelling, (target) => {
        if (refused(target)) {
          refusedCount++;
          return;
        }
        expect(matchRules(step, { method: 'DELETE', path: target, tools: undefined }), target).toBeDefined();
        held++;
      }),
      { numRuns: 3000 },
    );
    expect(held).toBeGreaterThan(100);
    expect(refusedCount).toBeGreaterThan(100);
  });

  it('the spellings of the issue, one by one', () => {
    expect(refused('/invoices%00/42')).toBe(true);
    for (const target of ['/invoices%20/42', '/invoices.json', '/Invoices.JSON/42', '/%20invoices/42']) {
      expect(refused(target), target).toBe(false);
      expect(matchRules(step, { method: 'DELETE', path: target, tools: undefined }), target).toBeDefined();
    }
    for (const target of ['/invoices-archive/42', '/invoicesjson', '/invoice/42', '/in voices/42']) {
      expect(matchRules(step, { method: 'DELETE', path: target, tools: undefined }), target).toBeUndefined();
    }
  });
});
