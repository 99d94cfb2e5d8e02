import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Whether something a test needs from outside the project (a command, a browser, the build) is
 * there. Missing on a developer's machine: false, and the caller skips its tests. Missing in CI
 * (`CI` set): throws, so the file fails instead of skipping silently (.ci/run installs all of them).
 */
export function available(what: string, present: boolean, install: string): boolean {
  if (present) return true;
  if (process.env.CI) throw new Error(`${what} is missing in CI, where these tests must run: ${install}`);
  return false;
}

/** `name` on PATH (see available()). */
export function requireCommand(name: string, install = `.ci/run installs ${name}`): boolean {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
  return available(`the command ${name}`, found, install);
}

/** A file such as a browser binary or a build output (see available()). */
export function requireFile(path: string, install: string): boolean {
  return available(path, existsSync(path), install);
}
