#!/usr/bin/env bash
# Builds the Chorus image from deploy/Dockerfile on a machine that cannot pull registry images,
# runs it, and checks it: `/healthz` answers and a `chorus loadtest` smoke passes through it.
#
#   1. two base root filesystems from Debian packages with debootstrap (minbase variant, from
#      the mirror this machine's apt uses), imported with `podman import`:
#        localhost/chorus-proof/debian:SUITE        the runtime base (glibc, libgcc_s)
#        localhost/chorus-proof/rust:VERSION-SUITE  the builder base: gcc, libc6-dev,
#                                                   ca-certificates, and this host's rustup
#                                                   toolchain copied to /usr/local/rust
#   2. `podman build -f deploy/Dockerfile` with BUILDER_IMAGE and RUNTIME_IMAGE pointed at
#      them: the release binary is compiled inside the builder container exactly as the public
#      build does it (crates from crates.io into a persistent cache mount, so a second run
#      reuses the downloaded crates and the compiled target dir);
#   3. `podman run` of the image on the host network, listening on loopback only; bounded
#      wait for `/healthz`; then `chorus loadtest` — the image's own binary, in a second
#      container — with 1 publisher and 2 subscribers for 5 s; the loadtest fails unless every
#      expected track is received, and this script also wants forwarded packets and no errors;
#      SIGTERM must drain and exit with 0;
#   4. when the image's chorus has cluster mode (`--redis-url`): Debian's redis-server on
#      loopback, two nodes of the image on it, and a loadtest whose room's participants are
#      spread over both nodes (signaling relayed to the room's node, media straight to it).
#
# Needs root, network access to the Debian mirror and crates.io, and ~3 GB under
# CHORUS_PROOF_DIR. Installs debootstrap, podman, buildah and runc with apt when missing.
# Every step has a time bound; the script prints the time each one took.
#
# Usage: deploy/image-proof.sh [--rebuild-bases]
# CHORUS_PROOF_CONTEXT=DIR builds another checkout (its Cargo.toml, benches/, src/) with this
# checkout's Dockerfile.
# Environment: CHORUS_PROOF_DIR (default /var/tmp/chorus-image-proof), CHORUS_PROOF_MIRROR
# (default: the first Debian URI of apt's sources), CHORUS_PROOF_SUITE (default bookworm,
# the public image's Debian), CHORUS_PROOF_PORT / CHORUS_PROOF_UDP_PORT (default 18480 / 41480), CHORUS_PROOF_RUNTIME
# (OCI runtime, default runc: crun refuses hybrid cgroup hierarchies such as this machine's),
# CHORUS_PROOF_NICE (default 10: the image build runs niced), CHORUS_PROOF_CA_BUNDLE (CAs the
# builder trusts for crates.io, default this host's /etc/ssl/certs/ca-certificates.crt).
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${CHORUS_PROOF_DIR:-/var/tmp/chorus-image-proof}
SUITE=${CHORUS_PROOF_SUITE:-bookworm}
PORT=${CHORUS_PROOF_PORT:-18480}
UDP_PORT=${CHORUS_PROOF_UDP_PORT:-41480}
RUNTIME=${CHORUS_PROOF_RUNTIME:-runc}
NICE=${CHORUS_PROOF_NICE:-10}
IMAGE=localhost/chorus:proof
CONTAINER=chorus-image-proof
LOADTEST=chorus-image-proof-loadtest
REBUILD_BASES=false
[ "${1:-}" = "--rebuild-bases" ] && REBUILD_BASES=true

START=$SECONDS
step() { echo "image-proof: [$((SECONDS - START)) s] $*"; }
fail() { echo "image-proof: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (debootstrap and rootful podman)"

# --- tools ----------------------------------------------------------------------------------
missing=""
for tool in debootstrap podman buildah "$RUNTIME" curl; do
    command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    step "apt-get install$missing"
    timeout 600 apt-get update -q
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q --no-install-recommends \
        $missing fuse-overlayfs slirp4netns uidmap
fi
# Inside another container the default limits podman asks for (nofile/nproc above the current
# hard limits) are refused without CAP_SYS_RESOURCE: ask for the current open-file limit and a
# modest process limit (the server runs a few dozen threads).
PODMAN=(podman --runtime "$RUNTIME")
NPROC=$(ulimit -Hu); [ "$NPROC" = unlimited ] || [ "$NPROC" -gt 4096 ] && NPROC=4096
LIMITS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=$NPROC:$NPROC")

# The first .../debian URI of apt's sources (awk reads them all: no SIGPIPE under pipefail).
MIRROR=${CHORUS_PROOF_MIRROR:-$(
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '($1 == "URIs:" || $1 == "deb") && $NF ~ /./ {
                   for (i = 2; i <= NF; i++) if ($i ~ /^https?:.*\/debian\/?$/ && !m) m = $i
               } END { print m }' || true
)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
mkdir -p "$WORK"

# --- 1. base images from Debian packages ----------------------------------------------------
# debootstrap ROOTFS [--include=...]: a minbase Debian of $SUITE, apt caches emptied.
bootstrap() {
    local rootfs=$1; shift
    rm -rf "$rootfs"
    timeout 900 debootstrap --variant=minbase "$@" "$SUITE" "$rootfs" "$MIRROR" \
        >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; fail "debootstrap $rootfs"; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
}

# import ROOTFS IMAGE [--change ...]
import() {
    local rootfs=$1 image=$2; shift 2
    tar -C "$rootfs" --numeric-owner -c . | timeout 600 podman import "$@" - "$image" >/dev/null
    rm -rf "$rootfs"
}

RUNTIME_BASE=localhost/chorus-proof/debian:$SUITE
if $REBUILD_BASES || ! podman image exists "$RUNTIME_BASE"; then
    step "debootstrap --variant=minbase $SUITE from $MIRROR → $RUNTIME_BASE"
    bootstrap "$WORK/runtime-rootfs"
    import "$WORK/runtime-rootfs" "$RUNTIME_BASE"
fi

RUSTC=$(rustup which rustc 2>/dev/null || command -v rustc) || fail "no rustc on this host"
TOOLCHAIN=$(dirname "$(dirname "$(readlink -f "$RUSTC")")")
RUST_VERSION=$("$RUSTC" --version | awk '{print $2}')
BUILDER_BASE=localhost/chorus-proof/rust:$RUST_VERSION-$SUITE
CA_BUNDLE=${CHORUS_PROOF_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$CA_BUNDLE" ] || fail "no CA bundle at $CA_BUNDLE (set CHORUS_PROOF_CA_BUNDLE)"
if $REBUILD_BASES || ! podman image exists "$BUILDER_BASE"; then
    step "debootstrap + gcc, libc6-dev, ca-certificates; Rust $RUST_VERSION from $TOOLCHAIN → $BUILDER_BASE"
    bootstrap "$WORK/builder-rootfs" --include=gcc,libc6-dev,ca-certificates
    # The toolchain without its documentation (share/); cargo and rustc find their sysroot
    # from their own path, so plain symlinks on PATH are enough (no rustup in the image).
    mkdir -p "$WORK/builder-rootfs/usr/local/rust" "$WORK/builder-rootfs/usr/local/cargo/bin"
    for part in bin lib libexec etc; do
        [ -d "$TOOLCHAIN/$part" ] && cp -a "$TOOLCHAIN/$part" "$WORK/builder-rootfs/usr/local/rust/"
    done
    for tool in cargo rustc rustdoc; do
        ln -s "../../rust/bin/$tool" "$WORK/builder-rootfs/usr/local/cargo/bin/$tool"
    done
    # cargo fetches crates over HTTPS: the builder trusts what this host trusts (a machine
    # behind a TLS-inspecting proxy has that proxy's CA in its bundle, Debian's does not).
    cp "$CA_BUNDLE" "$WORK/builder-rootfs/etc/ssl/certs/ca-certificates.crt"
    import "$WORK/builder-rootfs" "$BUILDER_BASE" \
        --change "ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change "ENV CARGO_HOME=/usr/local/cargo"
fi
step "bases: $RUNTIME_BASE, $BUILDER_BASE"

# --- 2. the image, from the project's Dockerfile --------------------------------------------
# The Dockerfile's cache mounts (cargo registry, target dir) persist between podman builds, so
# only the first run downloads every crate and compiles every dependency.
step "podman build -f deploy/Dockerfile (release build inside the builder, nice $NICE)"
BUILD_START=$SECONDS
nice -n "$NICE" timeout 3600 "${PODMAN[@]}" build --network host --layers \
    --ignorefile deploy/Dockerfile.dockerignore \
    --build-arg "BUILDER_IMAGE=$BUILDER_BASE" --build-arg "RUNTIME_IMAGE=$RUNTIME_BASE" \
    -f deploy/Dockerfile -t "$IMAGE" "${CHORUS_PROOF_CONTEXT:-.}" || fail "podman build"
step "image $IMAGE built in $((SECONDS - BUILD_START)) s ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"

# --- 3. run it, probe it, load it -----------------------------------------------------------
NODES=()
REDIS_PID=""
REPORT_DIR=$(mktemp -d)
chmod 0777 "$REPORT_DIR"
cleanup() {
    # --ignore: one missing name (the loadtest's --rm container) must not spare the others.
    "${PODMAN[@]}" rm --ignore -f -t 5 "$CONTAINER" "$LOADTEST" "${NODES[@]}" >/dev/null 2>&1 || true
    [ -z "$REDIS_PID" ] || kill "$REDIS_PID" 2>/dev/null || true
    rm -rf "$REPORT_DIR"
}
trap cleanup EXIT
"${PODMAN[@]}" rm --ignore -f -t 5 "$CONTAINER" "$LOADTEST" >/dev/null 2>&1 || true

# start_node NAME PORT UDP_PORT [ENV=VALUE...]: the image on the host network, loopback only;
# waits (30 s at most) for /healthz, and checks the server runs as uid 65532.
start_node() {
    local name=$1 port=$2 udp=$3; shift 3
    # Something else on the port would answer the probes and the loadtest in the image's place.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        fail "127.0.0.1:$port is already in use (set CHORUS_PROOF_PORT)"
    fi
    local env=(-e CHORUS_LISTEN="127.0.0.1:$port" -e CHORUS_UDP_BIND=127.0.0.1
        -e CHORUS_UDP_PORT="$udp" -e CHORUS_UDP_THREADS=1 -e CHORUS_ADVERTISE_IPS=127.0.0.1
        -e CHORUS_MAX_CONNECTIONS_PER_IP=0 -e CHORUS_DRAIN_TIMEOUT=5s)
    local pair
    for pair in "$@"; do env+=(-e "$pair"); done
    "${PODMAN[@]}" rm --ignore -f "$name" >/dev/null 2>&1 || true
    "${PODMAN[@]}" run -d --name "$name" --network host "${LIMITS[@]}" "${env[@]}" "$IMAGE" \
        >/dev/null || fail "podman run $name"
    local deadline=$((SECONDS + 30))
    until [ "$(curl -fsS --max-time 2 "http://127.0.0.1:$port/healthz" 2>/dev/null)" = ok ]; do
        if [ $SECONDS -ge $deadline ] || [ "$(podman inspect -f '{{.State.Running}}' "$name")" != true ]; then
            podman logs "$name" 2>&1 | tail -20 >&2
            fail "$name: /healthz did not answer ok within 30 s"
        fi
        sleep 0.5
    done
    local user
    user=$(stat -c %u "/proc/$(podman inspect -f '{{.State.Pid}}' "$name")")
    [ "$user" = 65532 ] || fail "$name: the server runs as uid $user, not 65532"
    step "$name: /healthz $(curl -fsS "http://127.0.0.1:$port/healthz"), /readyz $(curl -fsS "http://127.0.0.1:$port/readyz"), uid 65532"
}

# loadtest URLS PUBLISHERS SUBSCRIBERS: the image's own `chorus loadtest` in a second container
# (URLS comma-separated: participants round-robin over them); every expected track must
# arrive, the server(s) must forward packets, and no error may be counted.
loadtest() {
    timeout 120 "${PODMAN[@]}" run --rm --name "$LOADTEST" --network host "${LIMITS[@]}" \
        -v "$REPORT_DIR:/report" "$IMAGE" loadtest --url "$1" --publishers "$2" \
        --subscribers "$3" --duration 5s --json /report/report.json || fail "loadtest through the image"
    python3 - "$REPORT_DIR/report.json" <<'EOF' || fail "loadtest report"
import json, sys
r = json.load(open(sys.argv[1]))
server = r.get("server") or {}
errors = r.get("errors") or {}
print(f"image-proof: loadtest: tracks {r['tracks_receiving']}/{r['tracks_expected']}, "
      f"legs connected {r['legs_connected']}/{r['legs']}, loss {r['loss_pct']:.2f} %, "
      f"forwarded {server.get('forwarded_pps', 0):.0f} packets/s, errors {errors}")
assert r["tracks_expected"] > 0 and r["tracks_receiving"] == r["tracks_expected"]
assert server.get("forwarded_pps", 0) > 0, "the server forwarded nothing"
assert not any(errors.values()), "loadtest errors"
EOF
}

# stop_clean NAME: SIGTERM starts the drain; with no room left the server exits with 0.
stop_clean() {
    "${PODMAN[@]}" stop -t 20 "$1" >/dev/null
    local status
    status=$(podman inspect -f '{{.State.ExitCode}}' "$1")
    [ "$status" = 0 ] || fail "$1 exited with $status after SIGTERM"
}

start_node "$CONTAINER" "$PORT" "$UDP_PORT"
loadtest "ws://127.0.0.1:$PORT/ws" 1 2
stop_clean "$CONTAINER"
step "single node: image built from deploy/Dockerfile on Debian bases, /healthz ok, loadtest smoke ok, clean drain"

# --- 4. two nodes and Redis (when the image's chorus has cluster mode) ----------------------
# Debian's redis-server on loopback; two nodes of the image sharing it; the loadtest spreads
# one room's participants over both nodes, so the room's node serves clients relayed by the
# other one, and their media goes straight to the room's node.
serve_help=$("${PODMAN[@]}" run --rm "${LIMITS[@]}" "$IMAGE" serve --help 2>&1) || fail "chorus serve --help"
if ! grep -q -- --redis-url <<<"$serve_help"; then
    step "cluster step skipped: this image's chorus has no --redis-url"
    exit 0
fi
command -v redis-server >/dev/null || {
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q --no-install-recommends redis-server
}
REDIS_PORT=$((PORT + 3))
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$REPORT_DIR" >"$REPORT_DIR/redis.log" 2>&1 &
REDIS_PID=$!
deadline=$((SECONDS + 10))
until redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; do
    [ $SECONDS -lt $deadline ] || fail "redis-server did not start"
    sleep 0.2
done
NODES=(chorus-image-proof-a chorus-image-proof-b)
for i in 0 1; do
    port=$((PORT + 1 + i))
    start_node "${NODES[$i]}" "$port" "$((UDP_PORT + 10 * (i + 1)))" \
        "CHORUS_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0" "CHORUS_NODE_ID=proof-$i" \
        "CHORUS_NODE_URL=ws://127.0.0.1:$port"
done
loadtest "ws://127.0.0.1:$((PORT + 1))/ws,ws://127.0.0.1:$((PORT + 2))/ws" 1 3
# Each node saw the other in the registry, and joins really were relayed to the room's node.
# metric NODE_PORT NAME LABEL: the sum of NAME's series with LABEL on that node.
metric() {
    curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" \
        | awk -v name="$2" -v label="$3" 'index($1, name "{") == 1 && index($1, label) { s += $NF } END { print s + 0 }'
}
relayed=0
for i in 0 1; do
    active=$(metric "$((PORT + 1 + i))" chorus_cluster_nodes 'state="active"')
    [ "$active" = 2 ] || fail "${NODES[$i]} sees $active active nodes in the registry, not 2"
    relayed=$((relayed + $(metric "$((PORT + 1 + i))" chorus_cluster_placements_total 'result="remote"')))
done
[ "$relayed" -ge 1 ] || fail "no join was relayed to the room's node"
for node in "${NODES[@]}"; do stop_clean "$node"; done
step "cluster: two nodes of the image on one Redis see each other; one room across both ($relayed joins relayed to the room's node), loadtest ok, clean drains"
