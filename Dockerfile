# syntax=docker/dockerfile:1
#
# trailhound's container image: a release build on Debian bookworm, run as a non-root user on
# bookworm-slim with the system's certificate authorities (rustls-native-certs reads them for
# Splunk HEC) and nothing else: the binary makes every AWS call itself.
#
#   docker build -t trailhound:0.1.0 .
#   docker build --build-arg TRAILHOUND_VERSION="$(cargo metadata --no-deps --format-version 1 | jq -r '.packages[0].version')" -t trailhound:dev .
#
# TRAILHOUND_VERSION defaults to the version in Cargo.toml; scripts/check_terraform.sh checks
# that the two agree.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src
COPY . .
# The registry and target folders are BuildKit caches: a rebuild after a source change
# compiles only what changed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin trailhound \
    && install -D -m 0755 target/release/trailhound /out/trailhound

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
ARG TRAILHOUND_VERSION=0.1.0
LABEL org.opencontainers.image.title="trailhound" \
      org.opencontainers.image.description="Hunts AWS CloudTrail for behaviour that is new for the principal doing it" \
      org.opencontainers.image.version="${TRAILHOUND_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 trailhound \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/trailhound --create-home --shell /usr/sbin/nologin trailhound
COPY --from=builder /out/trailhound /usr/local/bin/trailhound
USER 10001:10001
WORKDIR /var/lib/trailhound
# A batch job, not a server: ECS and Step Functions watch its exit code, so there is nothing
# for a health check to probe.
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/trailhound"]
CMD ["--help"]
