# syntax=docker/dockerfile:1
# The single cinder-evs-csi binary (controller, node, import, drain-wait, gc; built without the
# `emulator` feature, so without the emulator and sandbox modes) on a scratch image holding only
# the tools the node service runs and their libraries (~30 MB).
#
#   docker build --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) -t REGISTRY/cinder-evs-csi:TAG .
#
# tests/install/image.rs replays the two RUN stages outside docker exactly as written (same COPY set,
# same commands) on every CI run, so keep every command relative to WORKDIR and `--locked`.

FROM rust:1.95-slim-trixie AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them. build.rs includes the one source file
# below, so it is part of the dependency stage. The workspace's other members (the emulator and
# the test kit) need only their manifests: the image builds without the `emulator` feature.
COPY Cargo.toml Cargo.lock build.rs ./
COPY emulator/Cargo.toml emulator/Cargo.toml
COPY testkit/Cargo.toml testkit/Cargo.toml
COPY proto proto
COPY src/telemetry/secret_names.rs src/telemetry/secret_names.rs
RUN mkdir -p emulator/src testkit/src && touch emulator/src/lib.rs testkit/src/lib.rs \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && cargo build --release --locked --no-default-features --bin cinder-evs-csi \
 && rm -rf target/release/.fingerprint/cinder-evs-csi-* target/release/deps/*cinder_evs_csi* \
      src/main.rs src/lib.rs
COPY src src
# The context carries no .git; the commit `--version` reports comes in as a build argument.
ARG GIT_COMMIT=unknown
ENV CINDER_EVS_CSI_GIT_COMMIT=${GIT_COMMIT}
RUN cargo build --release --locked --no-default-features --bin cinder-evs-csi

FROM debian:trixie-slim AS rootfs
WORKDIR /staging
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      e2fsprogs xfsprogs btrfs-progs util-linux mount ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/image/rootfs.sh rootfs.sh
COPY --from=build /src/target/release/cinder-evs-csi cinder-evs-csi
RUN sh rootfs.sh rootfs cinder-evs-csi

FROM scratch
ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="cinder-evs-csi" \
      org.opencontainers.image.description="Kubernetes CSI driver for OpenStack Cinder and Huawei Cloud EVS block volumes" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.version="0.1.0"
COPY --from=rootfs /staging/rootfs /
ENV PATH=/usr/sbin:/usr/bin TMPDIR=/tmp
# The controller (and gc) run as an unprivileged user by default; the node
# DaemonSet overrides this with runAsUser: 0 and privileged: true, because it formats and mounts
# devices. The chart and deploy/ set both explicitly.
USER 65532:65532
ENTRYPOINT ["/cinder-evs-csi"]
