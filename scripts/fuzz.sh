#!/usr/bin/env bash
# Bounded fuzzing run (docs/fuzzing.md): build every cargo-fuzz target in fuzz/, then run each for
# FUZZ_SECONDS (default 60) starting from the committed seeds (fuzz/corpus/<target>/seed-* and
# regress-*), with libFuzzer's hang (-timeout=10 s per input) and memory (-rss_limit_mb=2048)
# limits. Prints "<target>: N execs, no crash" per target and a final "N passed, M failed" line;
# exits 1 if any target crashed, hung or ran out of memory.
#
# Environment:
#   FUZZ_SECONDS  seconds per target (default 60)
#   FUZZ_TARGETS  space-separated subset of targets (default: all, from `cargo fuzz list`)
#   FUZZ_WORK     scratch directory for corpora and logs (default: a fresh temporary directory)
#
# Needs the nightly toolchain (`rustup toolchain install nightly`); installs cargo-fuzz if missing.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
seconds=${FUZZ_SECONDS:-60}
work=${FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/emu-fuzz.XXXXXX")}
mkdir -p "$work"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# The backend's slow-path thunks are a deliberate once-per-process allocation (fuzz/lsan.supp).
export LSAN_OPTIONS="suppressions=$root/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}
start=$(date +%s)
echo "fuzz.sh: building $(echo $targets | wc -w) targets"
build() {
    if [ -z "${FUZZ_TARGETS:-}" ]; then
        cargo +nightly fuzz build
    else
        for t in $targets; do cargo +nightly fuzz build "$t" || return 1; done
    fi
}
build >"$work/build.log" 2>&1 || {
    tail -n 40 "$work/build.log"
    echo "fuzz.sh: build failed (log: $work/build.log)"
    exit 1
}
echo "fuzz.sh: built in $(($(date +%s) - start)) s; ${seconds} s per target; logs in $work"

passed=0
failed=0
for t in $targets; do
    corpus="$work/corpus/$t"
    seeds="$work/seeds/$t"
    mkdir -p "$corpus" "$seeds" "artifacts/$t"
    # Only the committed inputs (fuzz/.gitignore keeps local corpus growth out of git).
    find "corpus/$t" -maxdepth 1 -type f \( -name 'seed-*' -o -name 'regress-*' \) \
        -exec cp {} "$seeds/" \; 2>/dev/null || true
    log="$work/$t.log"
    # New inputs go to the first directory; the seeds are read from the second.
    if cargo +nightly fuzz run "$t" "$corpus" "$seeds" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        execs=$(grep -a 'stat::number_of_executed_units' "$log" | tail -n 1 | awk '{print $2}')
        echo "$t: ${execs:-?} execs, no crash"
        passed=$((passed + 1))
    else
        echo "$t: FAILED (crash, hang or out of memory)"
        grep -a -E 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|Test unit written' "$log" |
            head -n 8 | sed 's/^/    /'
        echo "    log: $log"
        failed=$((failed + 1))
    fi
done
echo "fuzz.sh: total $(($(date +%s) - start)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
