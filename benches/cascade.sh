#!/usr/bin/env bash
# What cascading costs: the same rooms of simulated browsers
# (switchyard-pktgen) through one bridge, and spread over several bridges
# joined by relays (docs/cascading.md). A focus with --cascade and BRIDGES
# bridge agents (regions A, B, C…, one dataplane worker each) on loopback
# addresses of this host; the generator joins every participant from region
# A (all on bridge A), then spreads each room's participants over all the
# regions (each room spans every bridge). Prints one table: packets
# delivered per second, CPU ns per delivered packet (every bridge's
# dataplane and agent), one-way latency p50/p99 — and the ratios. Each
# bridge's /metrics before and after the spanning run are kept
# (b<region>.before.prom, b<region>.after.prom).
#
#   bash benches/cascade.sh
#   ROOMS=2 PARTICIPANTS=4 DURATION=10 bash benches/cascade.sh
#   BRIDGES=3 ROOMS=1 PARTICIPANTS=6 bash benches/cascade.sh
#
# Settings (environment): BRIDGES (2–9), ROOMS, PARTICIPANTS (per room),
# DURATION (seconds per run), OUT (results directory), BIN_DIR (binaries
# from there instead of a release build), SERVER_CPU and GEN_CPU (pin the
# focus and bridges, and the generator's one thread, to these CPUs; unset:
# not pinned). What the relay hop itself costs shows with one participant
# per region in each room, pinned, at a load the CPUs keep up with:
#
#   SERVER_CPU=0 GEN_CPU=1 ROOMS=8 PARTICIPANTS=2 bash benches/cascade.sh
set -euo pipefail

BRIDGES=${BRIDGES:-2}
ROOMS=${ROOMS:-2}
PARTICIPANTS=${PARTICIPANTS:-4}
DURATION=${DURATION:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/target/cascade/$(date -u +%Y%m%dT%H%M%SZ)}
REL=${BIN_DIR:-$ROOT/target/release}

say() { printf 'cascade: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[[ "$BRIDGES" =~ ^[2-9]$ ]] || die "BRIDGES must be 2-9"
# regions A, B, C… on loopback addresses 127.0.0.2, .3, .4…
LETTERS=(A B C D E F G H I)
REGIONS=("${LETTERS[@]:0:$BRIDGES}")
PIN_SERVER=()
PIN_GEN=()
GEN_ARGS=()
if [ -n "${SERVER_CPU:-}" ]; then PIN_SERVER=(taskset -c "$SERVER_CPU"); fi
if [ -n "${GEN_CPU:-}" ]; then
    PIN_GEN=(taskset -c "$GEN_CPU")
    GEN_ARGS=(--threads 1 --cores "$GEN_CPU")
fi
ip_of() { # region letter -> its bridge's address
    local i
    for i in "${!LETTERS[@]}"; do [ "${LETTERS[$i]}" != "$1" ] || echo "127.0.0.$((i + 2))"; done
}

if [ -z "${BIN_DIR:-}" ]; then
    say "building (release)"
    (cd "$ROOT" && cargo build --release -q -p switchyard-controlplane -p switchyard-dataplane \
        -p switchyard-benches)
fi
mkdir -p "$OUT"
chmod 700 "$OUT"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$OUT/cluster.secret"
chmod 600 "$OUT/cluster.secret"

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for _ in $(seq 50); do # up to 5 s to end on their own
        alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 1 ] || break
        sleep 0.1
    done
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    # a bridge's dataplane runs on its own: end those this script started
    for r in "${REGIONS[@]}"; do
        pkill -KILL -f -- "--control-socket $OUT/b$r/dp.sock" 2>/dev/null || true
    done
}
trap cleanup EXIT

wait_health() { # url name [code]: until /health answers `code` (200; 30 s)
    for _ in $(seq 300); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$1/health" 2>/dev/null || true)
        if [ "$code" = "${3:-200}" ]; then return 0; fi
        sleep 0.1
    done
    die "$2 did not answer ${3:-200} on /health; see $OUT/$2.log"
}

say "focus on 127.0.0.1:18080 (--cascade), bridges ${REGIONS[*]} on 127.0.0.2…$(ip_of "${REGIONS[-1]}")"
"${PIN_SERVER[@]}" "$REL/switchyard" focus --http 127.0.0.1:18080 --https off --cascade \
    --cluster-secret-file "$OUT/cluster.secret" --state-dir "$OUT/focus" --log warn \
    > "$OUT/focus.log" 2>&1 &
pids+=($!)
wait_health http://127.0.0.1:18080 focus 503 # up, no bridge yet
for region in "${REGIONS[@]}"; do
    ip=$(ip_of "$region")
    mkdir -p "$OUT/b$region"
    chmod 700 "$OUT/b$region"
    "${PIN_SERVER[@]}" "$REL/switchyard" bridge --focus ws://127.0.0.1:18080/cluster \
        --cluster-secret-file "$OUT/cluster.secret" --bridge-id "b$region" --region "$region" \
        --http "$ip:18081" --bind "$ip" --base-port 10000 --workers 1 \
        --control-socket "$OUT/b$region/dp.sock" --log warn \
        > "$OUT/b$region.log" 2>&1 &
    pids+=($!)
    wait_health "http://$ip:18081" "b$region"
done
wait_health http://127.0.0.1:18080 focus # a bridge can take rooms
sleep 2 # both registered and heartbeating
server_pids=$(pgrep -d, -f -- "--control-socket $OUT/b[A-I]/dp.sock" || true)
[ -n "$server_pids" ] || die "no bridge processes found"

run() { # name regions
    say "$1: $ROOMS rooms × $PARTICIPANTS participants, regions $2, $DURATION s"
    "${PIN_GEN[@]}" "$REL/switchyard-pktgen" "${GEN_ARGS[@]}" --server 127.0.0.1:18080 --rooms "$ROOMS" \
        --participants "$PARTICIPANTS" --duration "$DURATION" --regions "$2" \
        --room-prefix "$1" --server-pid "$server_pids" --json > "$OUT/$1.json"
}
counters() { # suffix: what each bridge's dataplane counted (relay traffic, drops)
    for r in "${REGIONS[@]}"; do
        curl -s "http://$(ip_of "$r"):18081/metrics" > "$OUT/b$r.$1.prom" || true
    done
}
run one A
counters before
run spanning "$(IFS=,; echo "${REGIONS[*]}")"
counters after

python3 - "$OUT" "$BRIDGES" <<'EOF'
import json, sys
out = sys.argv[1]
one, two = (json.load(open(f"{out}/{n}.json")) for n in ("one", "spanning"))
n = int(sys.argv[2])
def row(name, r):
    p50, p99 = r["latency_us"][0], r["latency_us"][1]
    cpu = r.get("cpu_ns_per_packet") or float("nan")
    return (name, r["received_pps"], cpu, p50, p99, r["lost"], r["streams_missing"])
rows = [row("one bridge", one), row(f"{n} bridges", two)]
print(f"{'':12} {'delivered/s':>12} {'CPU ns/pkt':>11} {'p50 µs':>8} {'p99 µs':>8} {'lost':>6} {'missing':>8}")
for name, pps, cpu, p50, p99, lost, missing in rows:
    print(f"{name:12} {pps:12.0f} {cpu:11.0f} {p50:8} {p99:8} {lost:6} {missing:8}")
(_, a_pps, a_cpu, a50, a99, _, _), (_, b_pps, b_cpu, b50, b99, _, _) = rows
print(f"{f'{n} / one':12} {b_pps / a_pps:12.2f} {b_cpu / a_cpu:11.2f} {b50 / a50:8.2f} {b99 / a99:8.2f}")
EOF
say "results in $OUT"
