#!/usr/bin/env bash
# Builds the benchmark images with buildah as OCI layouts under CACHE_DIR/bench/images and
# prints one line per image: its name and its layout reference (oci:DIR:TAG).
#
# Usage: build-images.sh
#
# Images:
#   toolchain         images/toolchain/Dockerfile without --layers: the base plus one layer
#   toolchain-layers  the same Dockerfile with --layers: one layer per RUN
#   small             images/small/Dockerfile without --layers
#
# The Debian base is the debootstrap root filesystem that tests/realistic/build.sh makes and
# caches. When the cache has none, this script runs tests/realistic/build.sh first, as
# tests/self-scan.sh does. A layout is rebuilt only when its Dockerfile, its build options or
# the cached root filesystem changed. Set ICS_BENCH_REBUILD=1 to rebuild all of them.
#
# Needs root, debootstrap, buildah and sha256sum, and HTTP access to the Debian mirror.
# Environment: ICS_CACHE_DIR and ICS_DEBIAN_MIRROR as for tests/realistic/build.sh.

set -euo pipefail

readonly SUITE=bookworm
readonly VARIANT=minbase
readonly BASE_IMAGE=localhost/ics-debian-base:${SUITE}
readonly LAYOUT_TAG=bench

bench_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd -- "$bench_dir/.." && pwd)
readonly bench_dir repo_dir

log() {
    printf 'build-images.sh: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

if ((EUID != 0)); then
    die "must run as root, because debootstrap and buildah's chroot isolation need it"
fi
for tool in debootstrap buildah sha256sum; do
    command -v "$tool" >/dev/null || die "$tool not found. Run bench/run.sh, which installs it."
done

if [[ -n ${ICS_CACHE_DIR:-} ]]; then
    cache_dir=$ICS_CACHE_DIR
else
    cache_dir=${HOME:?is not set. Set HOME or ICS_CACHE_DIR.}/.cache/image-compliance-scanner
fi
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
readonly cache_dir arch
images_dir=$cache_dir/bench/images
mkdir -p -- "$images_dir"

work_dir=$(mktemp -d "${TMPDIR:-/tmp}/ics-bench-build.XXXXXX")
readonly work_dir

cleanup() {
    local status=$?
    # --one-file-system keeps rm out of any mount that an interrupted buildah run left inside.
    rm -rf --one-file-system -- "$work_dir" || status=1
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Root filesystem: the cache of tests/realistic/build.sh. ---

rootfs_tar=$cache_dir/rootfs/${SUITE}-${VARIANT}-${arch}.tar
if [[ ! -f $rootfs_tar ]]; then
    log "running tests/realistic/build.sh to create the root filesystem cache"
    ICS_CACHE_DIR=$cache_dir bash "$repo_dir/tests/realistic/build.sh" "$work_dir/realistic" \
        >/dev/null
fi
[[ -f $rootfs_tar ]] || die "tests/realistic/build.sh did not create $rootfs_tar"

# The stamp of a layout: what it was built from. A layout whose stamp differs is rebuilt.
rootfs_id=$(stat --format '%s %Y' -- "$rootfs_tar")
readonly rootfs_id

stamp_of() {
    local dockerfile=$1 layers=$2
    {
        printf 'rootfs %s\nlayers %s\n' "$rootfs_id" "$layers"
        cat -- "$dockerfile"
    } | sha256sum | cut -d' ' -f1
}

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

base_imported=false

import_base() {
    $base_imported && return 0
    log "importing $rootfs_tar as $BASE_IMAGE"
    local container
    container=$(buildah from --quiet scratch)
    buildah add --quiet "$container" "$rootfs_tar" / >&2
    buildah config \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd '["bash"]' --os linux --arch "$arch" "$container"
    buildah commit --quiet --rm --signature-policy "$work_dir/policy.json" \
        "$container" "$BASE_IMAGE" >&2
    base_imported=true
}

# Builds image NAME from DOCKERFILE with --layers=LAYERS into its cached layout, unless the
# layout's stamp shows it is current.
build_image() {
    local name=$1 dockerfile=$2 layers=$3
    local layout=$images_dir/$name stamp started
    stamp=$(stamp_of "$dockerfile" "$layers")
    if [[ ${ICS_BENCH_REBUILD:-0} != 1 && -f $layout/bench-stamp &&
        $(<"$layout/bench-stamp") == "$stamp" ]]; then
        log "$name: cached at $layout"
        printf '%s oci:%s:%s\n' "$name" "$layout" "$LAYOUT_TAG"
        return 0
    fi

    import_base
    started=$SECONDS
    log "$name: buildah build --layers=$layers $dockerfile"
    buildah build --layers="$layers" --pull=never \
        --signature-policy "$work_dir/policy.json" \
        --file "$dockerfile" --tag "localhost/ics-bench-$name:latest" \
        "$(dirname -- "$dockerfile")" >&2
    rm -rf -- "$layout"
    buildah push --quiet --signature-policy "$work_dir/policy.json" \
        "localhost/ics-bench-$name:latest" "oci:$layout:$LAYOUT_TAG" >&2
    printf '%s\n' "$stamp" >"$layout/bench-stamp"
    # vfs keeps a full copy of the root filesystem per layer, so the store is emptied after
    # each image to bound the disk it takes.
    buildah rmi --all --force >/dev/null 2>&1 || true
    base_imported=false
    log "$name: built in $((SECONDS - started)) s"
    printf '%s oci:%s:%s\n' "$name" "$layout" "$LAYOUT_TAG"
}

build_image toolchain "$bench_dir/images/toolchain/Dockerfile" false
build_image toolchain-layers "$bench_dir/images/toolchain/Dockerfile" true
build_image small "$bench_dir/images/small/Dockerfile" false
