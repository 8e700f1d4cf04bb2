# The scanner's own image: one static binary and the CA roots on an empty base, run as a
# non-root numeric user. It passes every check of the scanner.
#
#   docker build --build-arg VERSION=0.1.0 -t image-compliance-scanner:0.1.0 .
#
# BUILDER_IMAGE must provide cargo and rustc (1.85 or later) on PATH, gcc, the static C
# library (Debian's libc6-dev) and /etc/ssl/certs/ca-certificates.crt, as the official Rust
# images on Debian do. ISA-L, the gzip decoder, is built from source and needs make, autoconf,
# automake, libtool and nasm; the first step installs those that are missing with apt.
# tests/self-scan.sh builds with a local builder image that has them all.
# NOTE: the default builder is named by tag, not digest; pin a digest in a release pipeline.
ARG BUILDER_IMAGE=docker.io/library/rust:1.95-bookworm

FROM ${BUILDER_IMAGE} AS builder

# The binary links glibc statically (a static-pie executable), so it runs on an empty base.
# glibc's resolver reads /etc/hosts and /etc/resolv.conf, which container runtimes mount.
ARG RUST_TARGET=x86_64-unknown-linux-gnu
ENV RUSTFLAGS="-C target-feature=+crt-static"

RUN missing=; \
    for tool in make autoconf automake libtoolize nasm; do \
        command -v "$tool" >/dev/null || missing=yes; \
    done; \
    if [ -n "$missing" ]; then \
        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            make autoconf automake libtool nasm && rm -rf /var/lib/apt/lists/*; \
    fi

WORKDIR /src
# .dockerignore limits the context to the manifest, the lock file and the sources.
COPY . .

# Cargo's download cache and the target directory are cache mounts, so a rebuild recompiles
# only what changed. The binary is copied out in the same step, before the mount goes away.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target "${RUST_TARGET}" --bin image-compliance-scanner \
    && mkdir -p /rootfs/usr/local/bin /rootfs/etc/ssl/certs /rootfs/tmp \
    && cp "target/${RUST_TARGET}/release/image-compliance-scanner" /rootfs/usr/local/bin/ \
    && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
    && chmod 0755 /rootfs/usr/local/bin/image-compliance-scanner \
    && chmod 0644 /rootfs/etc/ssl/certs/ca-certificates.crt \
    && chmod 1777 /rootfs/tmp

FROM scratch

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="image-compliance-scanner" \
      org.opencontainers.image.description="Checks OCI container images against compliance rules" \
      org.opencontainers.image.vendor="image-compliance-scanner maintainers" \
      org.opencontainers.image.authors="maintainers@image-compliance-scanner.example" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      component="scanner" \
      product="image-compliance-scanner"

# One COPY, so the image has one layer with any builder.
COPY --from=builder /rootfs/ /

# The root directory is not writable for this user, so reports go to /tmp unless a volume
# and COMPLIANCE_REPORTS_DIR say otherwise.
ENV COMPLIANCE_REPORTS_DIR=/tmp/reports \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/image-compliance-scanner"]
