/** Step-up callback secrets and the revocation admin token: long enough to resist guessing (checked when the config loads). */
export const MIN_SECRET_LENGTH = 32;

/** A config problem with the callback secret, or undefined when it is usable. */
export function checkCallbackSecret(secret: string): string | undefined {
  if (secret.length < MIN_SECRET_LENGTH) return `must hold at least ${MIN_SECRET_LENGTH} characters (use random bytes)`;
  return undefined;
}
