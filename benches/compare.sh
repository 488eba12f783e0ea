#!/usr/bin/env bash
# Switchyard and Janus (videoroom plugin) side by side, and a plain UDP
# forwarder as the baseline: the same ramp of
# simulated browsers (switchyard-pktgen) against each, each server alone in a
# network namespace this script makes, pinned to the same CPU, the generator
# pinned to another. Prints one table — knee in forwarded packets/s, CPU ns
# per forwarded packet, one-way latency — with the ratios, and keeps the ramps
# (JSON), plots (SVG) and server logs in $OUT.
#
#   bash benches/compare.sh                       # as root, on Debian
#   ROOMS=2 STEP=2 STEPS=12 PARTICIPANTS=5 DURATION=10 bash benches/compare.sh
#
# Settings (environment): ROOMS (first step), STEP (rooms added per step),
# STEPS (most steps), PARTICIPANTS (per room), DURATION (seconds per step),
# SERVER_CPU, GEN_CPU, OUT (results directory), ONLY (switchyard, janus or
# plain: that one alone),
# BIN_DIR (take the binaries from there instead of a release build), IOS
# (Switchyard's packet I/O backends to ramp, each a run of its own: `auto`,
# the default, and any of `uring mmsg xdp`; `xdp` runs AF_XDP on the
# namespace's veth, e.g. IOS="uring mmsg xdp" ONLY=switchyard), SERVER_QUOTA
# (percent of one CPU each server may use, by a cgroup CPU quota, so that
# the ramp finds the server's knee before the generator's: e.g. 50; empty,
# the default, for none), BASELINE (1, the default: also ramp
# switchyard-plainfwd, a plain UDP forwarder of the same traffic through
# Switchyard's packet I/O without any SFU work — the baseline row; 0: not),
# FAMILY (4, the default: the veth and servers on IPv4; 6: on IPv6 only).
set -euo pipefail

ROOMS=${ROOMS:-2}
STEP=${STEP:-2}
STEPS=${STEPS:-12}
PARTICIPANTS=${PARTICIPANTS:-5}
DURATION=${DURATION:-10}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
ONLY=${ONLY:-}
IOS=${IOS:-auto}
SERVER_QUOTA=${SERVER_QUOTA:-}
BASELINE=${BASELINE:-1}
FAMILY=${FAMILY:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/target/compare/$(date -u +%Y%m%dT%H%M%SZ)}
REL=${BIN_DIR:-$ROOT/target/release}

say() { printf 'compare: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (network namespaces, installing Janus)"
missing=()
command -v janus >/dev/null || missing+=(janus)
command -v ip >/dev/null || missing+=(iproute2)
command -v taskset >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi
cpus=$(nproc)
[ "$SERVER_CPU" -lt "$cpus" ] && [ "$GEN_CPU" -lt "$cpus" ] \
    || die "SERVER_CPU=$SERVER_CPU and GEN_CPU=$GEN_CPU need CPUs this host has ($cpus)"
[ "$SERVER_CPU" != "$GEN_CPU" ] || say "warning: server and generator share CPU $SERVER_CPU"

if [ -z "${BIN_DIR:-}" ]; then
    say "building (release)"
    (cd "$ROOT" && cargo build --release -q -p switchyard-controlplane -p switchyard-dataplane \
        -p switchyard-benches)
fi
mkdir -p "$OUT"

# A namespace with one veth to this one: the servers listen on $NS_IP
# ($NS_AT:port names a port there).
NS=sycmp$$
HOST_IF=sycmp$$h
NS_IF=sycmp$$n
case $FAMILY in
4)
    HOST_IP=10.213.$(( $$ % 250 )).1 NS_IP=10.213.$(( $$ % 250 )).2 PREFIX=24 NS_AT=$NS_IP ;;
6)
    net=fd00:213:$(printf %x $(( $$ % 65536 )))
    HOST_IP=$net::1 NS_IP=$net::2 PREFIX=64
    NS_AT="[$NS_IP]" ;;
*) die "FAMILY is 4 or 6" ;;
esac
server_pid=
child_pid= # Switchyard's dataplane, stopped with its control plane or after it
cleanup() {
    [ -z "$server_pid" ] || stop_server
    [ -z "$CGROUP" ] || rmdir "$CGROUP" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    ip link del "$HOST_IF" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$NS"
ip link add "$HOST_IF" type veth peer name "$NS_IF"
ip link set "$NS_IF" netns "$NS"
# nodad: an IPv6 address is usable at once, not after duplicate detection
nodad=()
[ "$FAMILY" = 4 ] || nodad=(nodad)
ip addr add "$HOST_IP/$PREFIX" dev "$HOST_IF" "${nodad[@]}"
ip link set "$HOST_IF" up
ip netns exec "$NS" ip addr add "$NS_IP/$PREFIX" dev "$NS_IF" "${nodad[@]}"
ip netns exec "$NS" ip link set "$NS_IF" up
ip netns exec "$NS" ip link set lo up

# The servers' CPU quota: a cgroup (v2, or v1's cpu hierarchy) whose
# processes together get SERVER_QUOTA % of one CPU; in_quota runs a command
# in it (children, like Switchyard's dataplane, stay in it).
CGROUP=
if [ -n "$SERVER_QUOTA" ]; then
    [ "$SERVER_QUOTA" -ge 1 ] 2>/dev/null || die "SERVER_QUOTA is a percentage of one CPU, e.g. 50"
    # per 100 ms period (a 10 ms period throttled every server at a fraction
    # of its share: tried). A server out of its share waits for the next
    # period, so latency under a quota is the quota's, not the server's:
    # take latency from a run without one
    quota=$(( SERVER_QUOTA * 1000 ))
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control \
            || echo +cpu > /sys/fs/cgroup/cgroup.subtree_control \
            || die "cannot enable the cgroup cpu controller"
        CGROUP=/sys/fs/cgroup/sycmp$$
        mkdir "$CGROUP"
        echo "$quota 100000" > "$CGROUP/cpu.max"
    elif [ -d /sys/fs/cgroup/cpu ]; then
        CGROUP=/sys/fs/cgroup/cpu/sycmp$$
        mkdir "$CGROUP"
        echo 100000 > "$CGROUP/cpu.cfs_period_us"
        echo "$quota" > "$CGROUP/cpu.cfs_quota_us"
    else
        die "no cgroup cpu controller for SERVER_QUOTA"
    fi
    say "servers limited to $SERVER_QUOTA % of CPU $SERVER_CPU ($CGROUP)"
fi
in_quota() { # command…: in the quota's cgroup, if there is one. Only as
    # `in_quota … &`: it execs, so that $! is the server's own pid
    if [ -n "$CGROUP" ]; then
        exec bash -c 'echo $$ > "$1" || exit 1; shift; exec "$@"' quota "$CGROUP/cgroup.procs" "$@"
    fi
    exec "$@"
}

wait_port() { # port: until something listens on $NS_IP:port (30 s)
    for _ in $(seq 300); do
        if timeout 1 bash -c "echo > /dev/tcp/$NS_IP/$1" 2>/dev/null; then return 0; fi
        kill -0 "$server_pid" 2>/dev/null || die "the server exited; see $OUT"
        sleep 0.1
    done
    die "nothing listens on $NS_IP:$1 after 30 s; see $OUT"
}

child_of() { # pid: a child process of it, from /proc (no procps needed)
    local f line
    for f in /proc/[0-9]*/stat; do
        read -r line < "$f" 2>/dev/null || continue
        line=${line##*) } # the fields after "(command) ": state, ppid, …
        if [ "$(echo "$line" | cut -d' ' -f2)" = "$1" ]; then
            f=${f#/proc/}
            echo "${f%/stat}"
            return
        fi
    done
}

stop_server() {
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    # a dataplane whose control plane had to be killed is left to us
    if [ -n "$child_pid" ]; then
        for _ in $(seq 30); do kill -0 "$child_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$child_pid" 2>/dev/null || true
    fi
    server_pid=
    child_pid=
}

udp_in() { # datagrams the namespace's kernel UDP stack has received (v4 + v6)
    ip netns exec "$NS" cat /proc/net/snmp /proc/net/snmp6 | awk '
        /^Udp: InDatagrams/ { getline; n += $2 }
        /^Udp6InDatagrams/ { n += $2 }
        END { print n + 0 }'
}

ramp() { # name target port pids…
    local name=$1 target=$2 port=$3 pids=$4
    local before
    before=$(udp_in)
    say "$name: ramp from $ROOMS rooms × $PARTICIPANTS, +$STEP per step, $DURATION s each"
    taskset -c "$GEN_CPU" "$REL/switchyard-pktgen" --target "$target" --server "$NS_AT:$port" \
        --ramp --rooms "$ROOMS" --ramp-step "$STEP" --ramp-steps "$STEPS" \
        --participants "$PARTICIPANTS" --duration "$DURATION" --threads 1 --cores "$GEN_CPU" \
        --server-pid "$pids" --json --svg "$OUT/$name.svg" --csv "$OUT/$name.csv" \
        > "$OUT/$name.json" 2> >(tee "$OUT/$name.progress" | grep --line-buffered '^step' >&2)
    # what went through the kernel's UDP stack rather than around it (AF_XDP)
    echo $(( $(udp_in) - before )) > "$OUT/$name.kernel-udp"
}

run_switchyard() { # io: its packet I/O backend
    local io=$1 name=switchyard flags=()
    if [ "$io" != auto ]; then
        name=switchyard-$io
        flags=(--io "$io")
        [ "$io" != xdp ] || flags+=(--xdp-interface "$NS_IF")
    fi
    in_quota ip netns exec "$NS" taskset -c "$SERVER_CPU" "$REL/switchyard" \
        --http "$NS_AT:8080" --https off --workers 1 --bind "$NS_IP" --base-port 10000 --open-rooms \
        "${flags[@]}" --state-dir "$OUT/$name-state" --log warn > "$OUT/$name.log" 2>&1 &
    server_pid=$!
    wait_port 8080
    local dp=
    for _ in $(seq 100); do
        dp=$(child_of "$server_pid")
        [ -n "$dp" ] && break
        sleep 0.1
    done
    [ -n "$dp" ] || die "no dataplane under switchyard ($server_pid)"
    child_pid=$dp
    ramp "$name" switchyard 8080 "$server_pid,$dp"
    stop_server
}

janus_config() { # dir
    local lib
    lib=$(dirname "$(dpkg -L janus | grep -m1 '/janus/plugins/libjanus_videoroom.so$')")
    lib=$(dirname "$lib")
    local off_plugins off_transports
    off_plugins=$(cd "$lib/plugins" && ls libjanus_*.so | grep -v videoroom | paste -sd, -)
    off_transports=$(cd "$lib/transports" && ls libjanus_*.so | grep -v websockets | paste -sd, -)
    mkdir -p "$1"
    cat > "$1/janus.jcfg" <<EOF
general: {
    configs_folder = "$1"
    plugins_folder = "$lib/plugins"
    transports_folder = "$lib/transports"
    events_folder = "$lib/events"
    loggers_folder = "$lib/loggers"
    debug_level = 3
}
media: {
    rtp_port_range = "20000-40000"
}
nat: {
    ice_lite = true
    ice_enforce_list = "$NS_IF"
}
plugins: {
    disable = "$off_plugins"
}
transports: {
    disable = "$off_transports"
}
events: {
    broadcast = false
}
EOF
    cat > "$1/janus.transport.websockets.jcfg" <<EOF
general: {
    json = "compact"
    ws = true
    ws_port = 8188
    ws_ip = "$NS_IP"
    wss = false
}
admin: {
    admin_ws = false
}
EOF
    printf 'general: {\n}\n' > "$1/janus.plugin.videoroom.jcfg"
}

run_plain() {
    in_quota ip netns exec "$NS" taskset -c "$SERVER_CPU" "$REL/switchyard-plainfwd" \
        --bind "$NS_AT:10000" > "$OUT/plain.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 50); do
        grep -q forwarding "$OUT/plain.log" 2>/dev/null && break
        kill -0 "$server_pid" 2>/dev/null || die "switchyard-plainfwd exited; see $OUT/plain.log"
        sleep 0.1
    done
    ramp plain plain 10000 "$server_pid"
    stop_server
}

run_janus() {
    janus_config "$OUT/janus-config"
    in_quota ip netns exec "$NS" taskset -c "$SERVER_CPU" janus -F "$OUT/janus-config" \
        -C "$OUT/janus-config/janus.jcfg" -o > "$OUT/janus.log" 2>&1 &
    server_pid=$!
    wait_port 8188
    ramp janus janus 8188 "$server_pid"
    stop_server
}

say "results in $OUT"
names=()
if [ "$ONLY" != janus ] && [ "$ONLY" != plain ]; then
    for io in $IOS; do
        run_switchyard "$io"
        if [ "$io" = auto ]; then names+=(switchyard); else names+=("switchyard-$io"); fi
    done
fi
[ "$ONLY" = switchyard ] || [ "$ONLY" = plain ] || { run_janus; names+=(janus); }
[ "$BASELINE" = 0 ] || { run_plain; names+=(plain); }
runs=()
for name in "${names[@]}"; do
    [ -s "$OUT/$name.json" ] && runs+=("$OUT/$name.json")
done
{
    echo "switchyard-pktgen ramps, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs ($(lscpu | sed -n 's/^Model name: *//p'))"
    echo "servers on CPU $SERVER_CPU${SERVER_QUOTA:+ (a $SERVER_QUOTA % quota)}, generator on CPU $GEN_CPU;" \
        "$PARTICIPANTS participants per room," \
        "from $ROOMS rooms +$STEP per step, $DURATION s per step"
    echo
    "$REL/switchyard-pktgen" --compare "$(IFS=,; echo "${runs[*]}")"
    echo
    echo "datagrams received through the server namespace's kernel UDP stack during each ramp:"
    for name in "${names[@]}"; do
        if [ -s "$OUT/$name.kernel-udp" ]; then echo "  $name: $(cat "$OUT/$name.kernel-udp")"; fi
    done
} | tee "$OUT/compare.txt"
