# syntax=docker/dockerfile:1
# Multi-stage build: a Rust toolchain builds the binary (librdkafka is compiled in), a
# slim Debian image runs it as a non-root user.

# The toolchain the test suite runs on.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev pkg-config cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY config config
COPY schemas schemas
COPY benches benches
COPY examples examples
# The system's OpenSSL (libssl3 below, security updates from Debian), not a vendored one.
RUN cargo build --release --locked --no-default-features --bin churnwatch \
 && strip target/release/churnwatch

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home churnwatch
COPY --from=build /src/target/release/churnwatch /usr/local/bin/churnwatch
COPY config/docker.toml /etc/churnwatch/churnwatch.toml
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["churnwatch"]
CMD ["run", "--config", "/etc/churnwatch/churnwatch.toml"]
