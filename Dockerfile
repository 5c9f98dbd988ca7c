# habitat-migrate as a container image, for the docker-compose deployment of the migration guide
# (see docker-compose.example.yml and the README's "In a container").
#
#   docker build -t habitat-migrate .
#   docker run --rm -e DATABASE_URL -v "$PWD/bundle:/bundle:ro" -v "$PWD/backups:/backups" \
#       habitat-migrate migrate /bundle
#
# Builder and runtime are the same Debian release (bookworm), so every glibc symbol version the
# binary was linked against exists in the runtime image. tests/container.rs checks this file.

FROM rust:1.95-bookworm AS builder
WORKDIR /build
# Only what the build reads: the manifest and lock file, the sources, the SQL migrations that
# src/store/schema.rs embeds and the fonts the PDF reports embed (src/report/pdf.rs);
# .dockerignore keeps everything else out of the context.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY assets ./assets
# Without debug info the binary is a fifth of its size (debug info made 35 of 43 MB when measured);
# symbol names stay, for backtraces.
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo
RUN cargo build --locked --release --bin habitat-migrate

FROM debian:bookworm-slim AS runtime
# A system user with a fixed uid, so that host directories mounted as volumes can be given to it
# (chown 10001). /work is its home and working directory: run logs go to /work/migration-logs.
RUN useradd --system --uid 10001 --user-group --home-dir /work --shell /usr/sbin/nologin habitat \
    && mkdir -p /work /bundle /backups \
    && chown habitat:habitat /work /backups
COPY --from=builder /build/target/release/habitat-migrate /usr/local/bin/habitat-migrate
# `sslrootcert=system` (PostgreSQL over TLS, verified against the public CAs) reads Debian's CA
# bundle. The Rust image has Debian's ca-certificates; the slim image has no CA bundle, and installing
# the package would bring openssl with it, so the bundle alone is copied over.
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV BACKUP_DIR=/backups
WORKDIR /work
VOLUME ["/bundle", "/backups"]
USER habitat:habitat
ENTRYPOINT ["habitat-migrate"]
CMD ["--help"]
