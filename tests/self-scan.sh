#!/usr/bin/env bash
# Builds the scanner's own image from the repository's Dockerfile with buildah, pushes it to
# a registry on 127.0.0.1 and scans it with the binary inside that image. Exits 0 only when
# the scan passes every check.
#
# Usage: tests/self-scan.sh
#
# Steps:
#   1. Builder image localhost/ics-rust-builder:bookworm: the Debian bookworm root filesystem
#      that tests/realistic/build.sh caches, plus gcc, libc6-dev, ca-certificates and ISA-L's
#      build tools (make, autoconf, automake, libtool, nasm) from the
#      Debian mirror. The host's Rust toolchain is bind-mounted read-only at /usr/local/rust
#      during the build instead of being copied into the image.
#   2. cargo vendor on the host, then buildah build of the Dockerfile with BUILDER_IMAGE set
#      to that image. The vendored crates and a cargo configuration that points at them are
#      mounted into the build, so the build itself needs no network. The Dockerfile's cache
#      mount keeps the target directory between runs.
#   3. docker-registry (CNCF distribution) on a free port of 127.0.0.1, and buildah push.
#   4. buildah run of the pushed image's entrypoint binary against localhost:PORT, so the
#      static binary resolves the name through the /etc/hosts that buildah mounts.
#
# Needs bash 5, root, buildah, docker-registry, curl, python3, cargo and rustc (the build
# uses the toolchain in rustc's sysroot), and HTTP access to the Debian mirror and to
# crates.io for crates that cargo has not cached yet.
# Environment:
#   ICS_CACHE_DIR       cache directory, shared with tests/realistic/build.sh (default:
#                       $HOME/.cache/image-compliance-scanner)
#   ICS_KEEP_WORK_DIR   set to 1 to keep the buildah store, registry and reports for a look
#
# Standard output gets the scan's table. Progress and the time of each stage go to standard
# error.

set -euo pipefail

readonly SUITE=bookworm
readonly VARIANT=minbase
readonly BUILDER_IMAGE=localhost/ics-rust-builder:${SUITE}
readonly SCANNER_REPO=image-compliance-scanner

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd -- "$script_dir/.." && pwd)
readonly script_dir repo_dir

log() {
    printf 'self-scan.sh: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

stage_started=
stage_name=

start_stage() {
    stage_name=$1
    stage_started=$EPOCHREALTIME
    log "${stage_name}..."
}

end_stage() {
    local elapsed
    elapsed=$(awk -v start="$stage_started" -v end="$EPOCHREALTIME" \
        'BEGIN { printf "%.1f", end - start }')
    log "time: ${stage_name}: ${elapsed} s"
}

if ((EUID != 0)); then
    die "must run as root, because buildah's chroot isolation needs it"
fi
for tool in buildah docker-registry curl python3 cargo rustc tar awk; do
    command -v "$tool" >/dev/null ||
        die "$tool not found. Install it (on Debian: apt-get install buildah docker-registry curl)."
done

if [[ -n ${ICS_CACHE_DIR:-} ]]; then
    cache_dir=$ICS_CACHE_DIR
else
    cache_dir=${HOME:?is not set. Set HOME or ICS_CACHE_DIR.}/.cache/image-compliance-scanner
fi
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
rootfs_tar=$cache_dir/rootfs/${SUITE}-${VARIANT}-${arch}.tar
toolchain=$(rustc --print sysroot)
version=$(awk -F'"' '/^version = / { print $2; exit }' "$repo_dir/Cargo.toml")
readonly cache_dir arch rootfs_tar toolchain version

work_dir=$(mktemp -d "${TMPDIR:-/tmp}/ics-self-scan.XXXXXX")
readonly work_dir
registry_pid=
container=

cleanup() {
    local status=$?
    if [[ -n $container ]]; then
        buildah rm "$container" >/dev/null 2>&1 || true
    fi
    if [[ -n $registry_pid ]]; then
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
    fi
    if [[ ${ICS_KEEP_WORK_DIR:-} == 1 ]]; then
        log "kept $work_dir"
    else
        rm -rf --one-file-system -- "$work_dir" || status=1
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- A private buildah store, so that the system's images and configuration play no part. ---

mkdir -p -- "$work_dir/storage" "$work_dir/run"
cat >"$work_dir/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$work_dir/storage"
runroot = "$work_dir/run"
EOF
printf '{"default": [{"type": "insecureAcceptAnything"}]}\n' >"$work_dir/policy.json"
: >"$work_dir/registries.conf"
: >"$work_dir/containers.conf"

export CONTAINERS_STORAGE_CONF=$work_dir/storage.conf
export CONTAINERS_REGISTRIES_CONF=$work_dir/registries.conf
export CONTAINERS_CONF=$work_dir/containers.conf
export STORAGE_DRIVER=vfs
export BUILDAH_ISOLATION=chroot
export BUILDAH_FORMAT=oci
unset BUILDAH_LAYERS

# --- Debian root filesystem, made and cached by tests/realistic/build.sh. ---

if [[ ! -f $rootfs_tar ]]; then
    start_stage "tests/realistic/build.sh, to create the root filesystem cache"
    ICS_CACHE_DIR=$cache_dir "$script_dir/realistic/build.sh" "$work_dir/realistic" >&2
    end_stage
fi
[[ -f $rootfs_tar ]] || die "tests/realistic/build.sh did not create $rootfs_tar"

# --- Builder image: the root filesystem plus a C toolchain, ISA-L's build tools and CA roots. ---

start_stage "builder image $BUILDER_IMAGE"
container=$(buildah from --quiet scratch)
buildah add --quiet "$container" "$rootfs_tar" / >&2
buildah run "$container" -- sh -c \
    'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev ca-certificates make autoconf automake libtool nasm && rm -rf /var/lib/apt/lists/*' \
    >&2
# The layout of the official Rust images: CARGO_HOME=/usr/local/cargo. cargo and rustc come
# from /usr/local/rust/bin, where the build mounts the host's toolchain.
buildah config \
    --env CARGO_HOME=/usr/local/cargo \
    --env PATH=/usr/local/rust/bin:/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --os linux --arch "$arch" \
    "$container"
buildah commit --quiet --rm --signature-policy "$work_dir/policy.json" \
    "$container" "$BUILDER_IMAGE" >&2
container=
end_stage

# --- Crates for an offline build. ---

# The build's chroot trusts Debian's CA roots only, which may not cover the host's route to
# crates.io, so the crates come through the host's cargo.
start_stage "cargo vendor"
cargo vendor --locked --quiet --manifest-path "$repo_dir/Cargo.toml" "$work_dir/vendor" \
    >/dev/null
cat >"$work_dir/cargo-config.toml" <<'TOML'
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "/vendor"

[net]
offline = true
TOML
end_stage

# --- The scanner image. ---

image=localhost/$SCANNER_REPO:$version
start_stage "buildah build $repo_dir/Dockerfile"
buildah build \
    --layers=false \
    --pull=never \
    --signature-policy "$work_dir/policy.json" \
    --build-arg "BUILDER_IMAGE=$BUILDER_IMAGE" \
    --build-arg "VERSION=$version" \
    --volume "$toolchain:/usr/local/rust:ro" \
    --volume "$work_dir/vendor:/vendor:ro" \
    --volume "$work_dir/cargo-config.toml:/usr/local/cargo/config.toml:ro" \
    --file "$repo_dir/Dockerfile" \
    --tag "$image" \
    "$repo_dir" >&2
end_stage

# --- A registry on 127.0.0.1 and the push. ---

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p -- "$work_dir/registry"
cat >"$work_dir/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work_dir/registry/storage
http:
  addr: 127.0.0.1:$port
EOF
# distribution reads REGISTRY_* variables as overrides of the configuration file, so the
# subshell drops them before it becomes the registry.
(
    for name in $(compgen -e); do
        [[ $name == REGISTRY_* ]] && unset "$name"
    done
    exec docker-registry serve "$work_dir/registry/config.yml"
) >"$work_dir/registry/log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
    curl --silent --fail --output /dev/null "http://127.0.0.1:$port/v2/" && break
    kill -0 "$registry_pid" 2>/dev/null ||
        die "docker-registry exited: $(cat "$work_dir/registry/log")"
    sleep 0.1
done
curl --silent --fail --output /dev/null "http://127.0.0.1:$port/v2/" ||
    die "docker-registry did not respond on 127.0.0.1:$port: $(cat "$work_dir/registry/log")"

pushed=localhost:$port/$SCANNER_REPO:$version
start_stage "buildah push to $pushed"
buildah push --quiet --tls-verify=false --signature-policy "$work_dir/policy.json" \
    "$image" "docker://127.0.0.1:$port/$SCANNER_REPO:$version" >&2
end_stage

# --- The scan, by the image's own binary. ---

reports=$work_dir/reports
mkdir -p -- "$reports"
chmod 0777 "$reports"
start_stage "scan of $pushed by its own binary"
container=$(buildah from --quiet --pull=never "$image")
set +e
buildah run \
    --volume "$reports:/reports" \
    --env COMPLIANCE_IMAGE_FULL_REF="$pushed" \
    --env COMPLIANCE_REPORTS_DIR=/reports \
    --env NO_COLOR=1 \
    "$container" -- /usr/local/bin/image-compliance-scanner
status=$?
set -e
end_stage

if ((status != 0)); then
    for report in "$reports"/*.json; do
        [[ -f $report ]] && cat -- "$report" >&2
    done
    die "the scan of the scanner's own image exited with $status; expected 0"
fi
log "the scanner's own image passed every check"
