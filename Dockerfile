# syntax=docker/dockerfile:1.7
# orderstream's images: one build stage compiles the binaries from Cargo.lock
# (`--locked`: the image holds exactly the dependency versions the tests ran
# with), then one small runtime stage per binary, selected with --target:
#
#   docker build --target producer     -t orderstream/producer:0.1.0 .
#   docker build --target consumer     -t orderstream/consumer:0.1.0 .
#   docker build --target lag-exporter -t orderstream/lag-exporter:0.1.0 .
#   docker build --target analytics    -t orderstream/analytics:0.1.0 .
#
# `make up` builds them through compose/docker-compose.yml. Base images are
# pinned; the Rust toolchain is the one the workspace is tested with.

FROM rust:1.95.0-slim-bookworm AS build
# librdkafka is built from source by rdkafka-sys: a C toolchain, make, cmake
# and zlib. Debian's package versions move with bookworm's point releases, so
# they are not pinned; the Rust dependencies are, by Cargo.lock.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ make cmake pkg-config zlib1g-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole workspace (every member's manifest must be present for --locked);
# .dockerignore keeps target/, .local/, data/ and secrets out.
COPY . .
# Cache mounts keep the registry and compiled dependencies between builds;
# the binaries are copied out because the target cache is not in the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        --bin orderstream-producer --bin orderstream-consumer \
        --bin orderstream-lag-exporter --bin orderstream-analytics --bin orderstream-verify \
 && mkdir -p /out \
 && cp target/release/orderstream-producer target/release/orderstream-consumer \
       target/release/orderstream-lag-exporter target/release/orderstream-analytics \
       target/release/orderstream-verify /out/

# What every runtime image shares: the base with what the binaries link
# besides glibc and zlib (OpenSSL, for librdkafka's TLS, and the system's CA
# certificates it trusts by default), an unprivileged user, the *_FILE secret
# reader and the health check.
FROM debian:12.12-slim AS runtime
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 orderstream \
 && useradd --system --uid 10001 --gid orderstream --home-dir /var/lib/orderstream \
        --shell /usr/sbin/nologin orderstream \
 && mkdir -p /var/lib/orderstream/producer /data/inbox \
 && chown -R orderstream:orderstream /var/lib/orderstream
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/orderstream-entrypoint
COPY --chmod=0755 docker/healthcheck.sh /usr/local/bin/orderstream-healthcheck
WORKDIR /opt/orderstream
USER 10001:10001

# The metrics server binds loopback by default (safe on a shared host). In a
# container, loopback is unreachable from Prometheus in another container, so
# each image binds 0.0.0.0 explicitly; only the compose network reaches it
# (no port is published). The health check reads the same variable.

FROM runtime AS producer
COPY --from=build /out/orderstream-producer /usr/local/bin/
ENV ORDERSTREAM_INBOX=/data/inbox \
    ORDERSTREAM_STATE_DIR=/var/lib/orderstream/producer \
    ORDERSTREAM_PRODUCER_METRICS_ADDR=0.0.0.0:9101
VOLUME ["/var/lib/orderstream/producer"]
EXPOSE 9101
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["orderstream-healthcheck", "ORDERSTREAM_PRODUCER_METRICS_ADDR"]
ENTRYPOINT ["orderstream-entrypoint", "orderstream-producer"]

FROM runtime AS consumer
COPY --from=build /out/orderstream-consumer /usr/local/bin/
ENV ORDERSTREAM_CONSUMER_METRICS_ADDR=0.0.0.0:9102
EXPOSE 9102
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["orderstream-healthcheck", "ORDERSTREAM_CONSUMER_METRICS_ADDR"]
ENTRYPOINT ["orderstream-entrypoint", "orderstream-consumer"]
CMD ["run"]

FROM runtime AS lag-exporter
COPY --from=build /out/orderstream-lag-exporter /usr/local/bin/
ENV ORDERSTREAM_LAG_EXPORTER_METRICS_ADDR=0.0.0.0:9103
EXPOSE 9103
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["orderstream-healthcheck", "ORDERSTREAM_LAG_EXPORTER_METRICS_ADDR"]
ENTRYPOINT ["orderstream-entrypoint", "orderstream-lag-exporter"]

# Periodic verification: every export line accounted for against PostgreSQL,
# its counts as metrics (OrderstreamLinesMissing). It reads the inbox and the
# producer's saved positions, both mounted read-only.
FROM runtime AS verify
COPY --from=build /out/orderstream-verify /usr/local/bin/
ENV ORDERSTREAM_INBOX=/data/inbox \
    ORDERSTREAM_STATE_DIR=/var/lib/orderstream/producer \
    ORDERSTREAM_VERIFY_METRICS_ADDR=0.0.0.0:9104
EXPOSE 9104
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["orderstream-healthcheck", "ORDERSTREAM_VERIFY_METRICS_ADDR"]
ENTRYPOINT ["orderstream-entrypoint", "orderstream-verify"]
CMD ["--every", "1h"]

# A one-shot (the report, or Metabase provisioning): it serves no /healthz,
# so there is nothing to check while it runs; compose waits for it to exit 0.
FROM runtime AS analytics
COPY --from=build /out/orderstream-analytics /usr/local/bin/
# The question files, where the binary looks by default (metabase/questions).
COPY metabase/questions /opt/orderstream/metabase/questions
HEALTHCHECK NONE
ENTRYPOINT ["orderstream-entrypoint", "orderstream-analytics"]
CMD ["provision-metabase"]
