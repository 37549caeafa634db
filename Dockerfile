# syntax=docker/dockerfile:1
# The single cinder-evs-csi binary (controller, node, emulator, sandbox, drain-wait, gc) on a
# small Debian runtime carrying the filesystem and mount tools the node service runs.

FROM rust:1.95-slim-trixie AS build
WORKDIR /src
# No .git in the context: `--version` reports the commit as "unknown" in images.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src target/release/.fingerprint/cinder-evs-csi-* target/release/deps/*cinder_evs_csi*
COPY src src
RUN cargo build --release --locked && cp target/release/cinder-evs-csi /cinder-evs-csi

FROM debian:trixie-slim
# e2fsprogs/xfsprogs/btrfs-progs: mkfs, fsck and online growth; util-linux: mount, blkid,
# blockdev, losetup; udev is not needed (the device links come from the host's /dev).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      e2fsprogs xfsprogs btrfs-progs util-linux mount ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /cinder-evs-csi /cinder-evs-csi
# The controller runs as 65532 (the chart sets it); the node container runs privileged as root.
ENTRYPOINT ["/cinder-evs-csi"]
