#!/usr/bin/env bash
# ICE-TCP against UDP (issue #16, show 6): the same rooms of
# switchyard-pktgen against one Switchyard, media over UDP and over ICE-TCP in
# turn, RUNS times each; prints CPU ns per forwarded packet (control plane and
# dataplane, the ICE-TCP front included), one-way latency p50 / p99 and the
# TCP / UDP ratios of each pair. The server runs on SERVER_CPU, the generator
# on GEN_CPU. Reports are kept in target/ice-tcp/<time>/.
#
#   bash benches/ice_tcp.sh            (release binaries: cargo build --release first)
#   ROOMS=4 PARTICIPANTS=4 DURATION=15 RUNS=3 SERVER_CPU=0 GEN_CPU=1 bash benches/ice_tcp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN_DIR=${BIN_DIR:-target/release}
ROOMS=${ROOMS:-4}
PARTICIPANTS=${PARTICIPANTS:-4}
DURATION=${DURATION:-15}
RUNS=${RUNS:-3}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
for b in switchyard switchyard-pktgen; do
    [ -x "$BIN_DIR/$b" ] || { echo "no $BIN_DIR/$b: cargo build --release -p switchyard-controlplane -p switchyard-benches" >&2; exit 2; }
done
out=target/ice-tcp/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
state=$(mktemp -d)
chmod 700 "$state"
http=127.0.0.1:$((20000 + RANDOM % 20000))
taskset -c "$SERVER_CPU" "$BIN_DIR/switchyard" --https off --workers 1 --http "$http" \
    --base-port 0 --ice-tcp-port 0 --control-socket "$state/dp.sock" --state-dir "$state" \
    --log warn >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$state"' EXIT
for _ in $(seq 100); do
    curl -sf "http://$http/health" >/dev/null 2>&1 && break
    sleep 0.1
done
dataplane=$(pgrep -f "switchyard dataplane .*$state/dp.sock" | head -1)
[ -n "$dataplane" ] || { echo "the dataplane did not start" >&2; cat "$out/server.log" >&2; exit 1; }
echo "switchyard (pid $server, dataplane $dataplane) on CPU $SERVER_CPU; generator on CPU $GEN_CPU"
echo "$ROOMS rooms x $PARTICIPANTS participants, $DURATION s per run, $RUNS runs per transport"
field() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }
printf '\n| run | transport | delivered/s | lost | CPU ns/pkt | p50 / p99 µs |\n| --- | --- | ---: | ---: | ---: | --- |\n'
for run in $(seq "$RUNS"); do
    for transport in udp tcp; do
        report="$out/run$run-$transport.json"
        taskset -c "$GEN_CPU" "$BIN_DIR/switchyard-pktgen" --server "$http" --rooms "$ROOMS" \
            --participants "$PARTICIPANTS" --duration "$DURATION" --threads 1 \
            --room-prefix "r$run$transport" --transport "$transport" \
            --server-pid "$server,$dataplane" --json >"$report" 2>"$out/run$run-$transport.log"
        printf '| %s | %s | %s | %s | %s | %s |\n' "$run" "$transport" \
            "$(field "$report" "round(r['received_pps'])")" "$(field "$report" "r['lost']")" \
            "$(field "$report" "round(r['cpu_ns_per_packet'])")" \
            "$(field "$report" "'%d / %d' % (r['latency_us'][0], r['latency_us'][1])")"
    done
done
echo
echo "TCP / UDP per run (CPU per packet, p50, p99):"
for run in $(seq "$RUNS"); do
    python3 - "$out/run$run-udp.json" "$out/run$run-tcp.json" "$run" <<'EOF'
import json, sys
u, t = (json.load(open(f)) for f in sys.argv[1:3])
print("  run %s: %.2f, %.2f, %.2f" % (sys.argv[3], t["cpu_ns_per_packet"] / u["cpu_ns_per_packet"],
      t["latency_us"][0] / u["latency_us"][0], t["latency_us"][1] / u["latency_us"][1]))
EOF
done
curl -s "http://$http/metrics" | grep -E '^switchyard_ice_tcp' >"$out/ice_tcp_metrics.txt" || true
echo "reports and the front's counters: $out/"
