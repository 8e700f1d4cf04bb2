#!/usr/bin/env python3
"""Write the seed corpora under fuzz/corpus/<target>/.

The seeds are small, valid inputs of each kind, so that short fuzz runs start from the
parsers' deep paths instead of guessing the formats. Run it again after changing a seed; it
overwrites the files it owns and leaves other files in the corpus folders alone.
"""

import base64
import gzip
import hashlib
import io
import json
import pathlib
import tarfile

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"

# Must equal LAYER_SEPARATOR in fuzz/src/lib.rs.
LAYER_SEPARATOR = b"--next-layer--"

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + hashlib.sha256(b"config").hexdigest()
DIGEST_C = "sha256:" + hashlib.sha256(b"layer").hexdigest()


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (folder / name).write_bytes(data)


def write_json(target, name, value):
    write(target, name, json.dumps(value, indent=2) + "\n")


def references():
    seeds = {
        "short-name": "alpine",
        "tag": "alpine:3.20",
        "docker-hub-full": "docker.io/library/alpine:latest",
        "docker-hub-alias": "index.docker.io/user/app",
        "nested-tag-digest": f"ghcr.io/org/team/app:v1.2.3@{DIGEST_A}",
        "localhost-port": "localhost:5000/app",
        "ipv4-port": "127.0.0.1:5000/ns/app:tag",
        "ipv6-digest": f"[::1]:5000/app@{DIGEST_A}",
        "sha512": "app@sha512:" + "b" * 128,
        "oci-layout": "oci:/tmp/layout:v1",
        "oci-archive": "oci-archive:image.tar:latest",
        "docker-archive": "docker-archive:image.tar:app:1.0",
    }
    for name, text in seeds.items():
        write("reference", name, text)


def basic_auth(user, password):
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def auth_configs():
    seeds = {
        "auth-field": (
            "ghcr.io",
            "org/app",
            {"auths": {"ghcr.io": {"auth": basic_auth("user", "ghp_0123456789abcdef")}}},
        ),
        "docker-hub-legacy-key": (
            "docker.io",
            "library/alpine",
            {
                "auths": {
                    "https://index.docker.io/v1/": {
                        "username": "hubuser",
                        "password": "dckr_pat_0123456789",
                    }
                }
            },
        ),
        "path-scoped-keys": (
            "registry.gitlab.com",
            "group/project/app",
            {
                "auths": {
                    "registry.gitlab.com": {"auth": basic_auth("host", "host-password-123")},
                    "registry.gitlab.com/group": {"auth": basic_auth("g", "group-password-1")},
                    "registry.gitlab.com/group/project": {
                        "identitytoken": "refresh-token-abcdef"
                    },
                }
            },
        ),
        "helpers": (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "team/app",
            {
                "credHelpers": {"123456789012.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"},
                "credsStore": "desktop",
                "auths": {"quay.io": {}},
            },
        ),
        "case-insensitive-fields": (
            "quay.io",
            "org/app",
            {"Auths": {"HTTPS://Quay.IO": {"RegistryToken": "registry-token-0123"}}},
        ),
        "loopback-http-key": (
            "localhost:5000",
            "app",
            {"auths": {"http://localhost:5000": {"auth": basic_auth("u", "local-password-1")}}},
        ),
    }
    for name, (registry, repository, config) in seeds.items():
        write("auth_config", name, f"{registry}\n{repository}\n{json.dumps(config, indent=1)}")
    # Without the two header lines, the whole input is the config.
    write(
        "auth_config",
        "config-only",
        json.dumps({"auths": {"registry.example.com": {"auth": basic_auth("a", "b")}}}),
    )


def descriptor(media_type, digest, size, **extra):
    value = {"mediaType": media_type, "digest": digest, "size": size}
    value.update(extra)
    return value


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def manifests():
    write_json(
        "manifest",
        "oci-manifest",
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, DIGEST_B, 1470),
            "layers": [
                descriptor(OCI_LAYER_GZIP, DIGEST_C, 3623807),
                descriptor(OCI_LAYER_GZIP, DIGEST_A, 32, urls=["https://example.com/l"]),
            ],
            "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
        },
    )
    write_json(
        "manifest",
        "docker-manifest",
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": descriptor(DOCKER_CONFIG, DIGEST_B, 1470),
            "layers": [descriptor(DOCKER_LAYER, DIGEST_C, 3623807)],
        },
    )
    platforms = [
        {"os": "linux", "architecture": "amd64"},
        {"os": "linux", "architecture": "arm64", "variant": "v8"},
        {"os": "linux", "architecture": "arm", "variant": "v7"},
        {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1"},
    ]
    entries = [
        descriptor(OCI_MANIFEST, DIGEST_A, 480, platform=platform) for platform in platforms
    ]
    entries.append(
        descriptor(
            OCI_MANIFEST,
            DIGEST_C,
            840,
            platform={"os": "unknown", "architecture": "unknown"},
            annotations={"vnd.docker.reference.type": "attestation-manifest"},
        )
    )
    write_json(
        "manifest", "oci-index", {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    )
    write_json(
        "manifest",
        "docker-manifest-list",
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": [
                descriptor(DOCKER_MANIFEST, DIGEST_A, 528, platform=platforms[0]),
                descriptor(
                    DOCKER_MANIFEST, DIGEST_C, 528, platform={"os": "linux", "architecture": "arm64"}
                ),
            ],
        },
    )
    write_json("manifest", "index-without-media-type", {"schemaVersion": 2, "manifests": entries[:2]})
    write_json("manifest", "schema1", {"schemaVersion": 1, "name": "app", "tag": "latest"})


def image_configs():
    write_json(
        "image_config",
        "oci-config",
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {
                "User": "1000:1000",
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Entrypoint": ["/entrypoint.sh"],
                "Cmd": ["serve", "--port", "8080"],
                "ExposedPorts": {"8080/tcp": {}, "22/tcp": {}},
                "Labels": {"org.opencontainers.image.source": "https://example.com/app"},
            },
            "rootfs": {"type": "layers", "diff_ids": [DIGEST_A, DIGEST_C]},
            "history": [
                {"created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
                {"created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": True},
                {"created_by": "RUN apk add --no-cache curl"},
            ],
        },
    )
    write_json(
        "image_config",
        "docker-config-string-cmd",
        {
            "architecture": "arm64",
            "variant": "v8",
            "os": "linux",
            "config": {"Cmd": "sh", "User": "", "Labels": None},
            "rootfs": {"type": "layers", "diff_ids": []},
        },
    )


# Layer tars.


def tar_bytes(members, fmt=tarfile.USTAR_FORMAT, global_pax=None):
    """Return a tar of (TarInfo, body) pairs, cut after its two end blocks."""
    buffer = io.BytesIO()
    options = {"format": fmt}
    if global_pax:
        options["pax_headers"] = global_pax
    with tarfile.open(fileobj=buffer, mode="w", **options) as archive:
        for info, body in members:
            info.size = len(body) if body is not None else 0
            archive.addfile(info, io.BytesIO(body) if body is not None else None)
        end = archive.offset
    return buffer.getvalue()[: end + 1024]


def entry(name, kind=tarfile.REGTYPE, mode=0o644, body=None, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.linkname = link
    info.mtime = 0
    return info, body


PASSWD = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = b"root:x:0:\napp:x:1000:\n"
OS_RELEASE = b'ID=alpine\nVERSION_ID=3.20.0\nPRETTY_NAME="Alpine Linux v3.20"\n'


def base_layer():
    return tar_bytes(
        [
            entry("etc/", tarfile.DIRTYPE, 0o755),
            entry("etc/passwd", body=PASSWD),
            entry("etc/group", body=GROUP),
            entry("etc/os-release", body=OS_RELEASE),
            entry("bin/", tarfile.DIRTYPE, 0o755),
            entry("bin/busybox", mode=0o755, body=b"\x7fELF"),
            entry("bin/sh", tarfile.SYMTYPE, 0o777, link="busybox"),
            entry("bin/su", tarfile.LNKTYPE, 0o4755, link="bin/busybox"),
            entry("usr/lib/os-release", tarfile.SYMTYPE, 0o777, link="../../etc/os-release"),
            entry("usr/bin/gcc", mode=0o755, body=b"gcc"),
            entry("dev/null", tarfile.CHRTYPE, 0o666),
            entry("run/fifo", tarfile.FIFOTYPE, 0o600),
        ]
    )


def sparse_pax_layer():
    """Return a tar of one PAX 1.0 sparse file, whose map of one 5-byte fragment leads the data."""
    info, _ = entry("GNUSparseFile.0/sparse.bin")
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": "data/sparse.bin",
        "GNU.sparse.realsize": "4096",
    }
    body = b"1\n0\n5\n".ljust(512, b"\0") + b"hello"
    return tar_bytes([(info, body)], tarfile.PAX_FORMAT)


def checksummed(block):
    block = bytearray(block)
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def old_gnu_sparse_layer():
    """Return a tar of one old GNU sparse file (type S) with a 5-byte fragment at offset 0."""
    header = bytearray(512)
    header[0:10] = b"sparse.old"
    header[100:108] = b"0000644\0"
    header[108:116] = b"0000000\0"
    header[116:124] = b"0000000\0"
    header[124:136] = b"00000000005\0"
    header[136:148] = b"00000000000\0"
    header[156] = ord("S")
    header[257:265] = b"ustar  \0"
    header[386:398] = b"00000000000\0"
    header[398:410] = b"00000000005\0"
    header[483:495] = b"00000010000\0"
    body = b"hello".ljust(512, b"\0")
    return checksummed(header) + body + bytes(1024)


def layers():
    base = base_layer()
    write("layer_walk", "ustar-base", base)
    write("layer_walk", "gzip-base", gzip.compress(base, mtime=0))

    long_dir = "opt/" + "/".join(["deep-directory-name"] * 8)
    pax = tar_bytes(
        [
            entry(f"{long_dir}/passwd", body=PASSWD),
            entry("opt/long-link", tarfile.SYMTYPE, 0o777, link="/" + long_dir + "/passwd"),
            entry("opt/caf\udce9", body=b"latin-1 name"),
            entry("opt/setgid", mode=0o2755, body=b"x"),
        ],
        tarfile.PAX_FORMAT,
        global_pax={"comment": "global header"},
    )
    write("layer_walk", "pax-long-names", pax)

    gnu = tar_bytes(
        [
            entry(f"{long_dir}/group", body=GROUP),
            entry("opt/hard", tarfile.LNKTYPE, 0o644, link=f"{long_dir}/group"),
        ],
        tarfile.GNU_FORMAT,
    )
    write("layer_walk", "gnu-long-names", gnu)

    write("layer_walk", "pax-sparse", sparse_pax_layer())
    write("layer_walk", "old-gnu-sparse", old_gnu_sparse_layer())

    # A second layer that deletes, hides and redirects what the base layer added.
    upper = tar_bytes(
        [
            entry("etc/.wh.group"),
            entry("usr/bin/.wh..wh..opq"),
            entry("lib", tarfile.SYMTYPE, 0o777, link="usr/lib"),
            entry("lib/os-release", body=OS_RELEASE.replace(b"alpine", b"debian")),
            entry("bin/.wh.sh"),
            entry("bin/sh", tarfile.LNKTYPE, 0o755, link="bin/busybox"),
            entry("etc/passwd", tarfile.DIRTYPE, 0o755),
        ]
    )
    write("layer_walk", "two-layers-whiteouts", base + LAYER_SEPARATOR + upper)

    loops = tar_bytes(
        [
            entry("a", tarfile.SYMTYPE, 0o777, link="b"),
            entry("b", tarfile.SYMTYPE, 0o777, link="/a"),
            entry("etc", tarfile.SYMTYPE, 0o777, link="../../real-etc"),
            entry("etc/passwd", body=PASSWD),
        ]
    )
    write("layer_walk", "symlink-loop-and-parent", loops)


def gzip_streams():
    """Seeds for gzip_stream: gzip streams without their first three bytes (1f 8b 08), which
    the harness puts back."""
    base = base_layer()
    one_member = gzip.compress(base, mtime=0)
    write("gzip_stream", "one-member", one_member[3:])
    two_members = gzip.compress(base[:1024], mtime=0) + gzip.compress(base[1024:], mtime=0)
    write("gzip_stream", "two-members", two_members[3:])
    write("gzip_stream", "stored", gzip.compress(base, compresslevel=0, mtime=0)[3:])
    named = bytearray(gzip.compress(base, mtime=0))
    named[3] |= 0x08  # FNAME: a name follows the fixed header
    named[10:10] = b"layer.tar\0"
    write("gzip_stream", "with-name", bytes(named[3:]))


def main():
    references()
    auth_configs()
    manifests()
    image_configs()
    layers()
    gzip_streams()


if __name__ == "__main__":
    main()
