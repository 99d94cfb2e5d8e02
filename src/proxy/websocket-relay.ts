import type { Duplex } from 'node:stream';
import { closeFrame, FrameBoundary } from './websocket-frames.js';

export type ClosedBy = 'client' | 'upstream' | 'proxy';
/** Why the proxy closed a connection itself. */
export type ProxyCloseReason = 'max_lifetime' | 'revoked' | 'capacity' | 'shutdown';

export interface RelayEnd {
  readonly closedBy: ClosedBy;
  readonly reason: ProxyCloseReason | 'error' | undefined;
  /** Bytes the agent sent after the handshake (frames, not decoded). */
  readonly bytesFromClient: number;
  /** Bytes the upstream sent after the handshake. */
  readonly bytesFromUpstream: number;
  /** The sockets had to be destroyed after `lingerMs` (a peer did not finish closing). */
  readonly cut: boolean;
}

export interface RelayOptions {
  /** Bytes the agent sent right after its handshake (Node's `head`). */
  readonly clientHead: Buffer;
  /** After a close starts, the sockets get this long to finish the closing handshake before they are destroyed. */
  readonly lingerMs: number;
  /** Called once, when both sockets are closed. */
  onEnd(end: RelayEnd): void;
}

export interface Relay {
  /**
   * Closes both legs with a close frame where a frame boundary allows: 1008 for the lifetime limit
   * and a revocation, 1013 when too many streams are open to track it, 1001 at shutdown.
   */
  close(reason: ProxyCloseReason): void;
  /** Destroys both sockets now. */
  destroy(): void;
}

/** RFC 6455 §7.4.1 status codes. */
const CLOSE_CODES: Record<ProxyCloseReason, [number, string]> = {
  max_lifetime: [1008, 'connection lifetime exceeded'],
  revoked: [1008, 'access revoked'],
  capacity: [1013, 'too many open connections'],
  shutdown: [1001, 'proxy shutting down'],
};

/**
 * Relays an opened WebSocket both ways, unbuffered (each chunk is written as it arrives, with
 * backpressure). When one side ends, the other is ended; when one side fails, both are destroyed;
 * a close that does not finish within `lingerMs` is cut. Nothing stays behind: timers are cleared
 * and listeners go with the destroyed sockets. The lifetime limit is the caller's (open-streams.ts),
 * which calls `close`.
 */
export function relay(client: Duplex, upstream: Duplex, options: RelayOptions): Relay {
  let bytesFromClient = 0;
  let bytesFromUpstream = 0;
  let closedBy: ClosedBy | undefined;
  let reason: RelayEnd['reason'];
  let closed = 0;
  let linger: NodeJS.Timeout | undefined;
  let cut = false;
  const toUpstream = new FrameBoundary();
  const toClient = new FrameBoundary();

  const destroy = (): void => {
    client.destroy();
    upstream.destroy();
  };
  const startLinger = (): void => {
    if (linger !== undefined) return;
    linger = setTimeout(() => {
      cut = true;
      destroy();
    }, options.lingerMs);
    linger.unref();
  };
  const side = (socket: Duplex, name: 'client' | 'upstream', other: Duplex): void => {
    socket.on('end', () => {
      closedBy ??= name;
      startLinger();
    });
    socket.on('error', () => {
      closedBy ??= name;
      reason ??= 'error';
      destroy();
    });
    socket.once('close', () => {
      closedBy ??= name;
      if (!other.destroyed) other.end();
      startLinger();
      if (++closed < 2) return;
      clearTimeout(linger);
      options.onEnd({ closedBy, reason, bytesFromClient, bytesFromUpstream, cut });
    });
  };
  side(client, 'client', upstream);
  side(upstream, 'upstream', client);

  // Who closed: the side whose close frame came first (RFC 6455 §7.1.2); both peers then end TCP
  // at about the same time, so socket events alone cannot tell.
  const fromClient = (chunk: Buffer): void => {
    bytesFromClient += chunk.length;
    toUpstream.push(chunk);
    if (toUpstream.closeSeen) closedBy ??= 'client';
  };
  client.on('data', fromClient);
  upstream.on('data', (chunk: Buffer) => {
    bytesFromUpstream += chunk.length;
    toClient.push(chunk);
    if (toClient.closeSeen) closedBy ??= 'upstream';
  });
  if (options.clientHead.length > 0) {
    fromClient(options.clientHead);
    upstream.write(options.clientHead);
  }
  client.pipe(upstream);
  upstream.pipe(client);

  const close = (why: ProxyCloseReason): void => {
    if (closedBy !== undefined) return;
    closedBy = 'proxy';
    reason = why;
    client.unpipe(upstream);
    upstream.unpipe(client);
    // unpipe() pauses a source with no pipe left: keep reading (and dropping) so each peer's close
    // frame and FIN arrive, and the sockets close without waiting for the linger timer.
    client.resume();
    upstream.resume();
    const [code, text] = CLOSE_CODES[why];
    // A close frame only between frames: one written inside a frame would corrupt the stream.
    if (toClient.atBoundary && client.writable) client.write(closeFrame(code, text, false));
    if (toUpstream.atBoundary && upstream.writable) upstream.write(closeFrame(code, text, true));
    client.end();
    upstream.end();
    startLinger();
  };
  return { close, destroy };
}
