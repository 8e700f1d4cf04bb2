#!/usr/bin/env bash
# Runs each fuzz target for a bounded time, one after another in a single libFuzzer process,
# and prints the executions and findings of each.
#
# Usage: fuzz/run.sh [TARGET...]      (default: every target)
#   FUZZ_SECONDS   run time of each target in seconds (default 60)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). cargo-fuzz passes nightly-only
# flags to rustc, so the script sets RUSTC_BOOTSTRAP=1 to let a stable toolchain take them.
#
# Each run reads the seeds in fuzz/corpus/TARGET/ and fuzz/regressions/TARGET/ and writes the
# inputs it adds to fuzz/work/TARGET/, so the seed corpus stays small. A finding (crash, hang
# over 10 s, allocation over 512 MiB, or RSS over 2 GiB) stops that target's run and lands in
# fuzz/artifacts/TARGET/. Replay it with `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET FILE` and,
# once it is understood, copy it to fuzz/regressions/TARGET/ for tests/fuzz_regressions.rs.
# The exit status is 1 when any target has a finding.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export RUSTC_BOOTSTRAP=1
# The cc crate passes -fsanitize=address from the fuzz build's RUSTFLAGS to C compilers, and
# gcc rejects it together with the -static that isal-sys links ISA-L with. So C code is
# built without AddressSanitizer; ISA-L's inflate is assembly, which it cannot instrument.
export CFLAGS="${CFLAGS:-} -fno-sanitize=address"
seconds=${FUZZ_SECONDS:-60}
all_targets=(reference auth_config manifest image_config layer_walk gzip_stream)
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=("${all_targets[@]}")
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed; install it with: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

# Inputs larger than this are not generated. Layers need room for several tar headers.
max_len_of() {
    case $1 in
        layer_walk | gzip_stream) echo 32768 ;;
        *) echo 8192 ;;
    esac
}

mkdir -p fuzz/work/logs
echo "==> building the fuzz targets (log: fuzz/work/logs/build.log)" >&2
if ! cargo fuzz build >fuzz/work/logs/build.log 2>&1; then
    tail -n 20 fuzz/work/logs/build.log >&2
    echo "building the fuzz targets failed; see fuzz/work/logs/build.log" >&2
    exit 2
fi

summary=()
found_any=false
for target in "${targets[@]}"; do
    work=fuzz/work/$target
    artifacts=fuzz/artifacts/$target
    log=fuzz/work/logs/$target.log
    mkdir -p "$work" "$artifacts"
    corpora=("$work" "fuzz/corpus/$target")
    if [[ -d fuzz/regressions/$target ]]; then
        corpora+=("fuzz/regressions/$target")
    fi
    options=(
        "-max_total_time=$seconds"
        "-max_len=$(max_len_of "$target")"
        -timeout=10
        -malloc_limit_mb=512
        -rss_limit_mb=2048
        -print_final_stats=1
    )
    if [[ -f fuzz/dicts/$target.dict ]]; then
        options+=("-dict=fuzz/dicts/$target.dict")
    fi

    started=$work/.started
    touch "$started"
    echo "==> fuzzing $target for ${seconds} s (log: $log)" >&2
    status=0
    cargo fuzz run "$target" "${corpora[@]}" -- "${options[@]}" >"$log" 2>&1 || status=$?
    new_artifacts=$(find "$artifacts" -type f -newer "$started")

    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    findings=$(printf '%s' "$new_artifacts" | grep -c . || true)
    if [[ $status -ne 0 && $findings -eq 0 ]]; then
        echo "$target: cargo fuzz exited with status $status and left no artifact; see $log" >&2
        findings="error"
    fi
    if [[ $findings != 0 ]]; then
        found_any=true
        grep -m 1 -E '^==[0-9]+== ?ERROR|panicked at|^SUMMARY' "$log" >&2 || true
        printf '%s\n' "$new_artifacts" >&2
    fi
    summary+=("$(printf '%-14s %12s %9s' "$target" "${executions:-unknown}" "$findings")")
done

printf '%-14s %12s %9s\n' target executions findings
printf '%s\n' "${summary[@]}"
if $found_any; then
    echo "artifacts are in fuzz/artifacts/TARGET/" >&2
    exit 1
fi
