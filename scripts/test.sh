#!/usr/bin/env bash
# Runs every Switchyard check and test, installing what they need first.
# Works on a fresh Debian machine with only Rust installed; CI runs it via
# .ci/run with CI=true and no stdin. Each step has a time bound.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step prints the minutes and seconds since the start, so a slow
# step shows in CI's log.
step() { printf '\n== [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

# --- system packages the tests need -----------------------------------------
# libsrtp2-dev: the independent SRTP implementation for interop tests;
# libssl-dev: OpenSSL for DTLS in the control plane.
packages=(libsrtp2-dev libssl-dev pkg-config)
missing=()
lean=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Tools, installed only when the command is missing (node and npm may come
# from elsewhere than Debian's packages): chromium, node and npm for the
# browser tests (driven by playwright-core); python3-venv for the aiortc
# client; iproute2 for the tests' network namespaces.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
/usr/bin/python3 -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables) # path loss in the ICE restart test
command -v gcc >/dev/null 2>&1 || missing+=(gcc) # the C ABI test
command -v janus >/dev/null 2>&1 || missing+=(janus) # the side-by-side benchmark
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server) # the shards' registry
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy) # shards behind a proxy
command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump) # what crosses a relay between bridges
command -v ping >/dev/null 2>&1 || missing+=(iputils-ping) # ICMP past the XDP program
command -v turnserver >/dev/null 2>&1 || missing+=(coturn) # browsers that reach only a TURN server
# promtool checks /metrics; the rest of the prometheus package is not needed
command -v promtool >/dev/null 2>&1 || lean+=(prometheus)
# GStreamer's webrtcbin client (tests/webrtcbin/client.py) runs on the
# system's Python with its GObject bindings and websockets
for p in gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
    gstreamer1.0-nice gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0 \
    python3-gi python3-websockets; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || lean+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ ${#lean[@]} -gt 0 ]; then
    step "installing ${missing[*]} ${lean[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq </dev/null
    [ ${#missing[@]} -eq 0 ] || as_root apt-get install -y -qq "${missing[@]}" </dev/null
    [ ${#lean[@]} -eq 0 ] || as_root apt-get install -y -qq --no-install-recommends "${lean[@]}" </dev/null
fi

# --- what the browser and aiortc tests drive -------------------------------------
step "playwright-core (npm ci) and aiortc (venv in target/pyenv)"
(cd controlplane/tests/browser && timeout 600 npm ci --no-audit --no-fund --silent)
python=${SWITCHYARD_PYTHON:-$PWD/target/pyenv/bin/python}
if ! "$python" -c "import aiortc, websockets" 2>/dev/null; then
    mkdir -p target
    /usr/bin/python3 -m venv target/pyenv
    timeout 900 target/pyenv/bin/pip install --quiet --disable-pip-version-check \
        -r controlplane/tests/aiortc/requirements.txt
    python=$PWD/target/pyenv/bin/python
fi
export SWITCHYARD_PYTHON=$python
if [ "$(id -u)" -ne 0 ]; then
    echo "the browser tests create network namespaces and need root" >&2
    exit 1
fi

# --- formatting and lints -----------------------------------------------------
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy -D warnings"
timeout 1200 cargo clippy --workspace --all-targets --locked -- -D warnings

# --- tests --------------------------------------------------------------------
# One test at a time: browser tests already take turns (a lock), and a
# process-heavy test beside one starves its browsers on two cores (a last-N
# run decoded 38 frames in 30 s; tests judged against the delay-based
# bandwidth estimate saw it fall to its floor, since another test's load is
# queueing delay). Unit tests lose seconds by it.
# Built first with its own bound, so the tests' bound is for running them.
step "cargo test --no-run (build every test target)"
timeout 1800 cargo test --workspace --all-targets --locked --no-run
step "cargo test --workspace (one test at a time)"
RUST_TEST_THREADS=1 timeout 2400 cargo test --workspace --all-targets --locked
timeout 600 cargo test --workspace --doc --locked

# --- Miri over the shared-memory code ------------------------------------------
# The rings, region, endpoint and continuity tables and the client-state
# block are what two processes share; Miri
# checks their atomics and raw accesses (on heap-backed regions: it cannot
# map files). Needs the nightly toolchain with its miri component.
if cargo +nightly --version >/dev/null 2>&1 \
    && { cargo +nightly miri --version >/dev/null 2>&1 \
        || timeout 300 rustup component add miri rust-src --toolchain nightly >/dev/null 2>&1; }; then
    step "cargo miri: abi::ring, abi::region, abi::table, abi::continuity, abi::client_state"
    MIRIFLAGS="-Zmiri-disable-isolation" timeout 1200 cargo +nightly miri test --locked \
        -p switchyard-dataplane --lib -- abi::ring abi::region abi::table abi::continuity abi::client_state
else
    step "cargo miri unavailable (no nightly toolchain with miri): skipped"
fi

step "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" timeout 900 cargo doc --workspace --no-deps --locked --quiet

# --- fuzz targets -------------------------------------------------------------
# Every fuzz entry point (the functions the cargo-fuzz targets in fuzz/ call:
# packet parsers, SRTP, the control plane's signalling, SDP, ABI commands,
# saved state, cluster frames, ICE and registry records) over random and
# mutated input for a bounded time, by the binary the tests already built.
# The coverage-guided `cargo fuzz` (nightly, sanitizers) builds the whole
# control plane again instrumented — 14 of CI's minutes — so it runs when
# asked for: FUZZ=cargo (each target FUZZ_SECONDS, default 10).
fuzz_seconds=${FUZZ_SECONDS:-10}
step "fuzz entry points over random and mutated input"
timeout 900 target/debug/switchyard-fuzz-random $((fuzz_seconds * 12))
if [ "${FUZZ:-}" = cargo ]; then
    cargo +nightly --version >/dev/null 2>&1 \
        || { echo "FUZZ=cargo needs a nightly toolchain (rustup toolchain install nightly)" >&2; exit 1; }
    command -v cargo-fuzz >/dev/null 2>&1 || timeout 600 cargo install cargo-fuzz --locked --quiet
    step "cargo fuzz: build and run each target for ${fuzz_seconds}s"
    (
        cd fuzz
        timeout 1200 cargo +nightly fuzz build
        for target in $(cargo +nightly fuzz list); do
            timeout $((fuzz_seconds + 60)) cargo +nightly fuzz run "$target" -- \
                -max_total_time="$fuzz_seconds" -max_len=4096 >"/tmp/fuzz-$target.log" 2>&1 \
                || { tail -50 "/tmp/fuzz-$target.log"; exit 1; }
            echo "  $target: $(grep -Eo 'Done [0-9]+ runs' "/tmp/fuzz-$target.log" | head -1)"
        done
    )
fi

step "all checks passed"
