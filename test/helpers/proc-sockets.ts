import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * This process's open TCP sockets with a local or remote port in `ports` (Linux: /proc/net/tcp* for
 * the inodes, /proc/self/fd for ours). Listening sockets count too.
 */
export function socketsOn(ports: ReadonlySet<number>): number {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const port = (addr: string | undefined) => Number.parseInt(addr?.split(':')[1] ?? '', 16);
      if (ports.has(port(f[1])) || ports.has(port(f[2]))) inodes.add(f[9] as string);
    }
  }
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m && inodes.has(m[1] as string)) count++;
    } catch {
      // closed while listing
    }
  }
  return count;
}
