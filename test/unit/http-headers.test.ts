import { describe, expect, it } from 'vitest';
import { cookiePairs, cookieValue } from '../../src/http/cookies.js';
import { mediaTypeOf } from '../../src/http/media-type.js';

describe('mediaTypeOf', () => {
  it('is the type/subtype, lower-cased, without parameters (RFC 9110 §8.3.1)', () => {
    expect(mediaTypeOf('application/json')).toBe('application/json');
    expect(mediaTypeOf('Application/JSON ; charset=utf-8')).toBe('application/json');
    expect(mediaTypeOf(' text/event-stream;charset=UTF-8')).toBe('text/event-stream');
    expect(mediaTypeOf(['application/secevent+jwt', 'text/plain'])).toBe('application/secevent+jwt');
  });

  it('is empty without a header', () => {
    expect(mediaTypeOf(undefined)).toBe('');
    expect(mediaTypeOf('')).toBe('');
    expect(mediaTypeOf([])).toBe('');
  });
});

describe('cookies', () => {
  const header = ' a=1; dp_step_up=v1.x=y ;;flag; b = 2 ';

  it('lists the pairs in order, trimmed, a bare name with an empty value', () => {
    expect(cookiePairs(header)).toEqual([
      { name: 'a', value: '1', text: 'a=1' },
      { name: 'dp_step_up', value: 'v1.x=y', text: 'dp_step_up=v1.x=y' },
      { name: 'flag', value: '', text: 'flag' },
      { name: 'b', value: '2', text: 'b = 2' },
    ]);
  });

  it('reads the first cookie of a name, undecoded', () => {
    expect(cookieValue(header, 'dp_step_up')).toBe('v1.x=y');
    expect(cookieValue('x=%41; x=2', 'x')).toBe('%41');
    expect(cookieValue(header, 'missing')).toBeUndefined();
    expect(cookieValue(undefined, 'a')).toBeUndefined();
  });
});
