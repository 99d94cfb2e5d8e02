# delegate-proxy container image.
#
#   docker build -t delegate-proxy .
#   docker run --rm -p 8080:8080 -p 9090:9090 -e DELEGATE_PROXY_DEV_HOST=0.0.0.0 delegate-proxy --dev
#
# Two stages: the full Node image compiles TypeScript, the slim one runs only dist/ with the production
# dependencies. The runtime stage needs no writable path (run it with a read-only root filesystem) and
# runs as uid 1000 (the `node` user of the official images), numeric so Kubernetes' runAsNonRoot can
# verify it.

ARG BUILD_IMAGE=node:24-bookworm
ARG RUNTIME_IMAGE=node:24-bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /app
# Lockfile first so the dependency layer is cached across source changes. --ignore-scripts: the
# project's `prepare` (tsc) runs below once the sources are in, and no dependency needs an install script.
# NPM_INSTALL=install is an escape hatch for a registry mirror that lacks a lockfile entry; keep `ci`.
ARG NPM_INSTALL=ci
COPY package.json package-lock.json ./
RUN npm "${NPM_INSTALL}" --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && find dist -name '*.d.ts' -o -name '*.d.ts.map' | xargs rm -f

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="delegate-proxy" \
      org.opencontainers.image.description="Sidecar reverse proxy that swaps an agent's user token for a short-lived delegated token (RFC 8693)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
    DELEGATE_PROXY_CONFIG=/etc/delegate-proxy/config.yaml
WORKDIR /app
# Owned by root and not writable by the runtime user, even without a read-only root filesystem.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
USER 1000:1000
# 8080: agent listener, 9090: admin (/metrics /healthz /readyz). Both bind where the config says;
# use 0.0.0.0 in the config (or DELEGATE_PROXY_DEV_HOST=0.0.0.0 with --dev) to publish them.
EXPOSE 8080 9090
# Exec form: node is PID 1 and receives SIGTERM itself; delegate-proxy handles it (drain, then exit 0).
# --max-semi-space-size=16 keeps V8's young generation at Node 20's size: Node 24 grows it to 2 × 64 MB
# on a host with a large heap limit, which is +95 MB of RSS in the soak (docs/operations.md "Reliability").
ENTRYPOINT ["node", "--enable-source-maps", "--max-semi-space-size=16", "/app/bin/delegate-proxy.js"]
