#!/usr/bin/env bash
# What cascading costs: the same rooms of simulated browsers
# (switchyard-pktgen) through one bridge, and spread over two bridges joined
# by relays (docs/cascading.md). A focus with --cascade and two bridge
# agents (regions A and B, one dataplane worker each) on loopback addresses
# of this host; the generator joins every participant from region A (all on
# bridge A), then half from A and half from B (each room spans both). Prints
# one table: packets delivered per second, CPU ns per delivered packet (both
# bridges' dataplanes and agents), one-way latency p50/p99 — and the ratios.
#
#   bash benches/cascade.sh
#   ROOMS=2 PARTICIPANTS=4 DURATION=10 bash benches/cascade.sh
#
# Settings (environment): ROOMS, PARTICIPANTS (per room), DURATION (seconds
# per run), OUT (results directory), BIN_DIR (binaries from there instead of
# a release build).
set -euo pipefail

ROOMS=${ROOMS:-2}
PARTICIPANTS=${PARTICIPANTS:-4}
DURATION=${DURATION:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/target/cascade/$(date -u +%Y%m%dT%H%M%SZ)}
REL=${BIN_DIR:-$ROOT/target/release}

say() { printf 'cascade: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

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
    sleep 1
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    # a bridge's dataplane runs on its own: end those this script started
    for d in "$OUT"/bA "$OUT"/bB; do
        pkill -KILL -f -- "--control-socket $d/dp.sock" 2>/dev/null || true
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

say "focus on 127.0.0.1:18080 (--cascade), bridges A on 127.0.0.2 and B on 127.0.0.3"
"$REL/switchyard" focus --http 127.0.0.1:18080 --https off --cascade \
    --cluster-secret-file "$OUT/cluster.secret" --state-dir "$OUT/focus" --log warn \
    > "$OUT/focus.log" 2>&1 &
pids+=($!)
wait_health http://127.0.0.1:18080 focus 503 # up, no bridge yet
for b in A:2 B:3; do
    region=${b%%:*}
    ip=127.0.0.${b##*:}
    mkdir -p "$OUT/b$region"
    chmod 700 "$OUT/b$region"
    "$REL/switchyard" bridge --focus ws://127.0.0.1:18080/cluster \
        --cluster-secret-file "$OUT/cluster.secret" --bridge-id "b$region" --region "$region" \
        --http "$ip:18081" --bind "$ip" --base-port 10000 --workers 1 \
        --control-socket "$OUT/b$region/dp.sock" --log warn \
        > "$OUT/b$region.log" 2>&1 &
    pids+=($!)
    wait_health "http://$ip:18081" "b$region"
done
wait_health http://127.0.0.1:18080 focus # a bridge can take rooms
sleep 2 # both registered and heartbeating
server_pids=$(pgrep -d, -f -- "--control-socket $OUT/b[AB]/dp.sock" || true)
[ -n "$server_pids" ] || die "no bridge processes found"

run() { # name regions
    say "$1: $ROOMS rooms × $PARTICIPANTS participants, regions $2, $DURATION s"
    "$REL/switchyard-pktgen" --server 127.0.0.1:18080 --rooms "$ROOMS" \
        --participants "$PARTICIPANTS" --duration "$DURATION" --regions "$2" \
        --room-prefix "$1" --server-pid "$server_pids" --json > "$OUT/$1.json"
}
run one A
run two A,B
# what each bridge counted (relay traffic, drops), for a look afterwards
curl -s http://127.0.0.2:18081/stats > "$OUT/bA.stats.json" || true
curl -s http://127.0.0.3:18081/stats > "$OUT/bB.stats.json" || true

python3 - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]
one, two = (json.load(open(f"{out}/{n}.json")) for n in ("one", "two"))
def row(name, r):
    p50, p99 = r["latency_us"][0], r["latency_us"][1]
    cpu = r.get("cpu_ns_per_packet") or float("nan")
    return (name, r["received_pps"], cpu, p50, p99, r["lost"], r["streams_missing"])
rows = [row("one bridge", one), row("two bridges", two)]
print(f"{'':12} {'delivered/s':>12} {'CPU ns/pkt':>11} {'p50 µs':>8} {'p99 µs':>8} {'lost':>6} {'missing':>8}")
for name, pps, cpu, p50, p99, lost, missing in rows:
    print(f"{name:12} {pps:12.0f} {cpu:11.0f} {p50:8} {p99:8} {lost:6} {missing:8}")
(_, a_pps, a_cpu, a50, a99, _, _), (_, b_pps, b_cpu, b50, b99, _, _) = rows
print(f"{'two / one':12} {b_pps / a_pps:12.2f} {b_cpu / a_cpu:11.2f} {b50 / a50:8.2f} {b99 / a99:8.2f}")
EOF
say "results in $OUT"
