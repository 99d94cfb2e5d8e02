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
