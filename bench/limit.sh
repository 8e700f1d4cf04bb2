#!/usr/bin/env bash
# Fetches every layer blob of an image from a plain-HTTP registry and decompresses it with
# igzip to /dev/null, all layers at once. This is the least work any scanner of the layers
# must do, so its time is the benchmark's lower bound ("the limit").
#
# Usage: limit.sh REGISTRY REPOSITORY TAG [--count-bytes]
#   REGISTRY is host:port. With --count-bytes the script prints, per layer, the digest, the
#   compressed size and the uncompressed size, tab-separated. The counting adds work, so
#   timed runs leave it off.
#
# Only gzip layers are read; the benchmark images have no others. Digests are not verified.

set -euo pipefail

if (($# < 3 || $# > 4)); then
    printf 'usage: limit.sh REGISTRY REPOSITORY TAG [--count-bytes]\n' >&2
    exit 2
fi
registry=$1 repository=$2 tag=$3 count_bytes=${4:-}
base_url=http://$registry/v2/$repository

manifest=$(curl --fail --silent --show-error \
    --header 'Accept: application/vnd.oci.image.manifest.v1+json' \
    --header 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "$base_url/manifests/$tag")
mapfile -t digests < <(jq -r '.layers[].digest' <<<"$manifest")
((${#digests[@]} > 0)) || {
    printf 'limit.sh: the manifest of %s:%s lists no layers\n' "$repository" "$tag" >&2
    exit 1
}

pids=()
for digest in "${digests[@]}"; do
    if [[ $count_bytes == --count-bytes ]]; then
        (
            set -o pipefail
            compressed=$(jq -r --arg d "$digest" '.layers[] | select(.digest == $d) | .size' \
                <<<"$manifest")
            uncompressed=$(curl --fail --silent --show-error "$base_url/blobs/$digest" |
                igzip -dc | wc -c)
            printf '%s\t%s\t%s\n' "$digest" "$compressed" "$uncompressed"
        ) &
    else
        (
            set -o pipefail
            curl --fail --silent --show-error "$base_url/blobs/$digest" | igzip -dc >/dev/null
        ) &
    fi
    pids+=("$!")
done

status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
exit "$status"
