import type { SubjectTarget } from '../auth/subject-index.js';

/** Why a subject identifier cannot be used: malformed (400) or a format this proxy does not match on. */
export type SubjectProblem = { readonly kind: 'malformed' | 'unsupported'; readonly reason: string };

const MAX_ID_LENGTH = 1024;

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH ? value : undefined;
}

/**
 * Maps an RFC 9493 subject identifier to what the token cache knows of a user:
 * `iss_sub` (§3.2.5) → `sub` + `iss`; `opaque` (§3.2.4) → `sub` (the transmitter's opaque id is
 * taken to be the user token's `sub`); `email` (§3.2.2) → the user token's `email` claim;
 * SSF 1.0 `complex` subjects → their `user` member. Other formats are reported as unsupported.
 */
export function mapSubject(subject: unknown, depth = 0): SubjectTarget | SubjectProblem {
  if (subject === null || typeof subject !== 'object' || Array.isArray(subject)) {
    return { kind: 'malformed', reason: 'subject identifier is not a JSON object' };
  }
  const s = subject as Record<string, unknown>;
  switch (s.format) {
    case 'iss_sub': {
      const iss = str(s.iss);
      const sub = str(s.sub);
      if (iss === undefined || sub === undefined) return { kind: 'malformed', reason: 'iss_sub needs iss and sub' };
      return { kind: 'sub', sub, iss };
    }
    case 'opaque': {
      const id = str(s.id);
      if (id === undefined) return { kind: 'malformed', reason: 'opaque needs id' };
      return { kind: 'sub', sub: id };
    }
    case 'email': {
      const email = str(s.email);
      if (email === undefined || !email.includes('@'))
        return { kind: 'malformed', reason: 'email needs an email address' };
      return { kind: 'email', email };
    }
    case 'complex':
      if (depth > 0 || s.user === undefined)
        return { kind: 'unsupported', reason: 'complex subject without a user member' };
      return mapSubject(s.user, depth + 1);
    case undefined:
      return { kind: 'malformed', reason: 'subject identifier has no format' };
    default:
      return {
        kind: 'unsupported',
        reason: `subject format ${String(s.format).slice(0, 40)} is not matched by this proxy`,
      };
  }
}

export function isProblem(value: SubjectTarget | SubjectProblem): value is SubjectProblem {
  return value.kind === 'malformed' || value.kind === 'unsupported';
}
