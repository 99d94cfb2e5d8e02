import { describe, expect, it } from 'vitest';
import { SubjectIndex } from '../../src/auth/subject-index.js';

describe('SubjectIndex', () => {
  it('finds one, two, then one key again of a user as entries come and go', () => {
    const index = new SubjectIndex();
    const alice = { sub: 'alice', iss: 'https://idp', email: 'Alice@Example.com' };
    index.add('k1', alice);
    expect(index.keysFor({ kind: 'sub', sub: 'alice' })).toEqual(['k1']);
    index.add('k2', alice);
    index.add('k2', alice); // already there: no duplicate
    expect(index.keysFor({ kind: 'sub', sub: 'alice' }).sort()).toEqual(['k1', 'k2']);
    expect(index.keysFor({ kind: 'email', email: 'alice@example.com' }).sort()).toEqual(['k1', 'k2']);
    index.remove('k1');
    expect(index.keysFor({ kind: 'sub', sub: 'alice' })).toEqual(['k2']);
    expect(index.keysFor({ kind: 'email', email: 'ALICE@example.com' })).toEqual(['k2']);
    index.add('k3', alice);
    expect(index.keysFor({ kind: 'sub', sub: 'alice', iss: 'https://idp' }).sort()).toEqual(['k2', 'k3']);
    index.remove('k2');
    index.remove('k3');
    index.remove('k3'); // unknown key: nothing to do
    expect(index.keysFor({ kind: 'sub', sub: 'alice' })).toEqual([]);
    expect(index.keysFor({ kind: 'email', email: 'alice@example.com' })).toEqual([]);
    expect(index.size).toBe(0);
  });

  it('keeps users apart and filters by iss', () => {
    const index = new SubjectIndex();
    index.add('a', { sub: 'u', iss: 'https://one' });
    index.add('b', { sub: 'u', iss: 'https://two' });
    index.add('c', { sub: 'u' }); // no iss: cannot be told apart, so it matches any iss
    index.add('d', { sub: 'v', iss: 'https://one' });
    expect(index.keysFor({ kind: 'sub', sub: 'u', iss: 'https://one' }).sort()).toEqual(['a', 'c']);
    expect(index.keysFor({ kind: 'sub', sub: 'v' })).toEqual(['d']);
    index.remove('a');
    expect(index.keysFor({ kind: 'sub', sub: 'u', iss: 'https://one' })).toEqual(['c']);
  });

  it('never keeps an object that holds the raw user token, only its claims', () => {
    const index = new SubjectIndex();
    const subject = { token: 'raw-user-token', sub: 'alice', iss: 'https://idp', email: undefined };
    index.add('k', subject);
    subject.sub = 'mallory'; // the copy is independent of the caller's object
    expect(index.keysFor({ kind: 'sub', sub: 'alice' })).toEqual(['k']);
  });
});
