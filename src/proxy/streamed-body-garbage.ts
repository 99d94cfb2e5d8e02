/**
 * Node reads a streamed request body into a new buffer per socket read. Each buffer is garbage once
 * written upstream, but its memory lies outside V8's heap and is freed only by a collection, and a
 * stream allocates too little on the heap to trigger one: a 512 MiB upload piled up about 70 MB of
 * such buffers before V8's own limit for memory outside its heap (64 MB) forced a collection
 * (docs/operations.md "Memory"). A young-generation collection after every `everyBytes` of request
 * body sent upstream, counted across all requests, keeps that pile near `everyBytes`.
 */
export function streamedBodyGarbage(collect: () => void, everyBytes: number): (bytes: number) => void {
  let sent = 0;
  return (bytes) => {
    sent += bytes;
    if (sent < everyBytes) return;
    sent = 0;
    collect();
  };
}
