#!/usr/bin/env python3
"""Write the demo OCI image layout in examples/demo-image.

The image is tiny and deterministic (fixed mtimes, sorted JSON), so the committed layout
only changes when this script does. It fails a few checks on purpose: a setuid program
that a later layer deletes, a busybox `su` applet link, an exposed SSH port and two layers.
"""

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "demo-image"


def tar_layer(entries):
    """Build an uncompressed tar from (path, kind, mode, body or link target) tuples."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, kind, mode, data in entries:
            info = tarfile.TarInfo(path)
            info.mode = mode
            info.mtime = 0
            info.uname = info.gname = "root"
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = data
                archive.addfile(info)
            else:
                body = data.encode()
                info.size = len(body)
                archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def write_blob(data):
    digest = hashlib.sha256(data).hexdigest()
    (OUT / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def canonical(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "blobs" / "sha256").mkdir(parents=True)

    base = tar_layer([
        ("etc", "dir", 0o755, None),
        ("etc/os-release", "file", 0o644, 'NAME="Demo Linux"\nVERSION_ID="1.0"\n'),
        ("etc/passwd", "file", 0o644,
         "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n"),
        ("etc/group", "file", 0o644, "root:x:0:\napp:x:1000:\n"),
        ("bin", "dir", 0o755, None),
        ("bin/busybox", "file", 0o755, "#!/bin/true\n"),
        ("bin/su", "symlink", 0o777, "/bin/busybox"),
        ("usr", "dir", 0o755, None),
        ("usr/bin", "dir", 0o755, None),
        ("usr/bin/passwd", "file", 0o4755, "#!/bin/true\n"),
    ])
    app = tar_layer([
        ("usr/bin/.wh.passwd", "file", 0o644, ""),
        ("app", "dir", 0o755, None),
        ("app/server", "file", 0o755, "#!/bin/true\n"),
    ])

    layers, diff_ids = [], []
    for raw in (base, app):
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        digest, size = write_blob(gzip.compress(raw, mtime=0))
        layers.append({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest,
            "size": size,
        })

    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": "app:app",
            "ExposedPorts": {"8080/tcp": {}, "22/tcp": {}},
            "Entrypoint": ["/app/server"],
            "Labels": {
                "org.opencontainers.image.vendor": "Example Ltd",
                "org.opencontainers.image.authors": "platform@example.com",
                "org.opencontainers.image.version": "1.0.0",
                "component": "backend",
                "product": "demo",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created_by": "ADD base.tar /"},
            {"created_by": "COPY server /app/server"},
        ],
    }
    config_digest, config_size = write_blob(canonical(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": layers,
    }
    manifest_digest, manifest_size = write_blob(canonical(manifest))
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "1.0.0"},
        }],
    }
    (OUT / "index.json").write_bytes(canonical(index))
    (OUT / "oci-layout").write_bytes(canonical({"imageLayoutVersion": "1.0.0"}))


if __name__ == "__main__":
    main()
