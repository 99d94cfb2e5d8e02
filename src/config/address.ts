import { isIPv4 } from 'node:net';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Splits a validated `host:port` (IPv6 in brackets). */
export function parseListenAddress(value: string): ListenAddress {
  const i = value.lastIndexOf(':');
  const host = value.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(value.slice(i + 1)) };
}

/** A listen address only this machine can reach (a loopback address or `localhost`). */
export function isLoopbackListen(listen: string): boolean {
  const { host } = parseListenAddress(listen);
  return host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'));
}
