/**
 * A response the proxy gives itself in place of the upstream's, and not a failure: for example an MCP
 * `tools/call` answered with an InputRequiredResult while a person approves it (docs/step-up.md
 * "MCP-native approval"). A step throws it to end the pipeline, as it would a ProxyError, having logged
 * why; the handler sends the body as JSON with `status`, with no error code and no challenge.
 */
export class LocalAnswer {
  constructor(
    readonly body: unknown,
    readonly status = 200,
  ) {}
}
