import { afterEach, describe, expect, it } from 'vitest';
import { available, requireCommand, requireFile } from '../helpers/require-tool.js';

/** Tests that need an outside tool skip without it on a developer's machine and fail in CI. */
describe('requireCommand / requireFile', () => {
  const ci = process.env.CI;
  afterEach(() => {
    if (ci === undefined) delete process.env.CI;
    else process.env.CI = ci;
  });

  it('is true when the tool is there, CI or not', () => {
    process.env.CI = 'true';
    expect(requireCommand('sh')).toBe(true);
    expect(requireFile('/bin/sh', 'n/a')).toBe(true);
  });

  it('is false without the tool outside CI', () => {
    delete process.env.CI;
    expect(requireCommand('no-such-command-dp')).toBe(false);
    expect(requireFile('/no/such/file', 'n/a')).toBe(false);
  });

  it('throws without the tool in CI, naming it and how to install it', () => {
    process.env.CI = 'true';
    expect(() => requireCommand('no-such-command-dp', 'apt-get install it')).toThrow(
      /no-such-command-dp is missing in CI.*apt-get install it/,
    );
    expect(() => requireFile('/no/such/file', 'npm run build')).toThrow(/\/no\/such\/file is missing in CI/);
    expect(() => available('x', false, 'y')).toThrow(/x is missing in CI/);
  });
});
