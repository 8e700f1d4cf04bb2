#!/usr/bin/env bash
# Builds the realistic test image and writes it to OUT_DIR as an OCI layout tagged
# "realistic".
#
# Usage: build.sh OUT_DIR
#
# Steps: debootstrap a minimal Debian bookworm root filesystem (cached), import it into a
# private buildah store as localhost/ics-debian-base:bookworm, build the Dockerfile beside this
# script on top of it, and push the result to oci:OUT_DIR:realistic.
#
# Needs bash 5 or later, root, debootstrap, buildah, tar and flock (util-linux), and HTTP
# access to the Debian mirror.
# Environment:
#   ICS_CACHE_DIR       cache directory (default: $HOME/.cache/image-compliance-scanner).
#                       The root filesystem tarball is cached there per suite, variant and
#                       architecture; delete it to pick up newer Debian packages.
#   ICS_DEBIAN_MIRROR   Debian mirror for debootstrap (default: http://deb.debian.org/debian).
#                       The image's apt-get uses the same mirror, through the sources.list
#                       that debootstrap writes.
#
# Standard output gets one line, the image reference oci:OUT_DIR:realistic. Progress, tool
# output and the time of each stage go to standard error.

set -euo pipefail

readonly SUITE=bookworm
readonly VARIANT=minbase
readonly BASE_IMAGE=localhost/ics-debian-base:${SUITE}
readonly BUILT_IMAGE=localhost/ics-realistic:latest
readonly LAYOUT_TAG=realistic

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
readonly script_dir

log() {
    printf 'build.sh: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

# Runs a command with its standard output sent to standard error, so that stdout carries only
# the final image reference.
quiet_stdout() {
    "$@" >&2
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

# Unmounts everything mounted at or below $1, deepest first. debootstrap mounts proc and sysfs
# inside its target and unmounts them when it exits normally, but not when it is killed.
unmount_below() {
    local root=$1 mount_point
    [[ -d $root ]] || return 0
    findmnt --list --noheadings --output TARGET |
        awk -v root="$root" 'index($0, root "/") == 1 || $0 == root' |
        sort --reverse |
        while read -r mount_point; do
            umount --lazy "$mount_point" || die "failed to unmount $mount_point"
        done
}

# Removes a directory tree without crossing into a filesystem mounted inside it.
remove_tree() {
    local dir=$1
    [[ -e $dir ]] || return 0
    if ! unmount_below "$dir"; then
        log "left $dir in place because a filesystem is still mounted inside it"
        return 1
    fi
    rm -rf --one-file-system -- "$dir"
}

if (($# != 1)); then
    die "expected one argument (the output directory). Usage: build.sh OUT_DIR"
fi
if ((EUID != 0)); then
    die "must run as root, because debootstrap and buildah's chroot isolation need it"
fi
for tool in debootstrap buildah tar flock findmnt awk; do
    command -v "$tool" >/dev/null ||
        die "$tool not found. Install it (on Debian: apt-get install debootstrap buildah)."
done

mkdir -p -- "$1"
out_dir=$(cd -- "$1" && pwd)
readonly out_dir

if [[ -n ${ICS_CACHE_DIR:-} ]]; then
    cache_dir=$ICS_CACHE_DIR
else
    cache_dir=${HOME:?is not set. Set HOME or ICS_CACHE_DIR.}/.cache/image-compliance-scanner
fi
mirror=${ICS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
readonly cache_dir mirror arch

work_dir=$(mktemp -d "${TMPDIR:-/tmp}/ics-realistic.XXXXXX")
readonly work_dir
debootstrap_dir=

cleanup() {
    local status=$?
    if [[ -n $debootstrap_dir ]]; then
        remove_tree "$debootstrap_dir" || status=1
    fi
    remove_tree "$work_dir" || status=1
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Root filesystem, cached per suite, variant and architecture. ---

rootfs_cache=$cache_dir/rootfs
rootfs_tar=$rootfs_cache/${SUITE}-${VARIANT}-${arch}.tar
mkdir -p -- "$rootfs_cache"

# Concurrent runs wait here, so that only one of them runs debootstrap.
exec {lock_fd}>"$rootfs_cache/${SUITE}.lock"
flock "$lock_fd"

# With the lock held no other run is in debootstrap, so a debootstrap directory left here
# belongs to a run that was killed, possibly with proc and sysfs still mounted inside it.
for stale_dir in "$rootfs_cache"/debootstrap.*; do
    [[ -d $stale_dir ]] || continue
    log "removing $stale_dir, left by an interrupted run"
    remove_tree "$stale_dir"
done

if [[ -f $rootfs_tar ]]; then
    start_stage "root filesystem from cache ($rootfs_tar)"
    # Listing the cached tarball fails here, early, when an earlier write was cut short.
    tar -tf "$rootfs_tar" >/dev/null ||
        die "cached $rootfs_tar is unreadable. Delete it and run again."
    end_stage
else
    start_stage "debootstrap $SUITE ($VARIANT, $arch) from $mirror"
    debootstrap_dir=$(mktemp -d "$rootfs_cache/debootstrap.XXXXXX")
    target=$debootstrap_dir/rootfs
    if ! quiet_stdout debootstrap --variant="$VARIANT" --arch="$arch" "$SUITE" "$target" \
        "$mirror"; then
        tail -n 30 "$target/debootstrap/debootstrap.log" >&2 2>/dev/null || true
        die "debootstrap $SUITE from $mirror failed"
    fi
    # The host's name and resolver settings that debootstrap copied in do not belong in an
    # image. The runtime (and buildah during RUN) mounts its own /etc/resolv.conf and
    # /etc/hostname, as it does for /dev, /proc and /sys.
    rm -f -- "$target/etc/hostname" "$target/etc/resolv.conf"
    # The Dockerfile fetches current package lists, so the debootstrap-time ones are removed.
    find "$target/var/cache/apt/archives" "$target/var/lib/apt/lists" -maxdepth 1 -type f \
        ! -name lock -delete
    tar --create --file "$debootstrap_dir/rootfs.tar" --directory "$target" \
        --numeric-owner --xattrs --xattrs-include='*' \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' .
    mv -- "$debootstrap_dir/rootfs.tar" "$rootfs_tar"
    remove_tree "$debootstrap_dir"
    debootstrap_dir=
    end_stage
fi

flock --unlock "$lock_fd"

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

# --- Base image: the root filesystem as one layer. ---

start_stage "import base image $BASE_IMAGE"
container=$(buildah from --quiet scratch)
quiet_stdout buildah add --quiet "$container" "$rootfs_tar" /
# Debian's default PATH for root, and bash as the default command.
buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd '["bash"]' \
    --os linux --arch "$arch" \
    "$container"
quiet_stdout buildah commit --quiet --rm --signature-policy "$work_dir/policy.json" \
    "$container" "$BASE_IMAGE"
end_stage

# --- The test image: the base layer plus one layer for the Dockerfile's instructions. ---

start_stage "buildah build $script_dir/Dockerfile"
# Without --layers buildah commits every instruction of the stage into one new layer.
quiet_stdout buildah build \
    --layers=false \
    --pull=never \
    --signature-policy "$work_dir/policy.json" \
    --file "$script_dir/Dockerfile" \
    --tag "$BUILT_IMAGE" \
    "$script_dir"
end_stage

start_stage "push to oci:$out_dir:$LAYOUT_TAG"
quiet_stdout buildah push --quiet --signature-policy "$work_dir/policy.json" \
    "$BUILT_IMAGE" "oci:$out_dir:$LAYOUT_TAG"
end_stage

printf 'oci:%s:%s\n' "$out_dir" "$LAYOUT_TAG"
