# hotline: build with the Rust toolchain, run on a slim Debian with only the
# binary, the two shared libraries it needs beside it, and espeak-ng (the
# phonemizer of the TTS voice). Models are not baked in: mount them at
# /opt/hotline/models (see docker-compose.yml and models/README.md).

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# sherpa-onnx C API + ONNX Runtime, from the sherpa-onnx-core wheel (the
# crate links against them; see scripts/setup).
RUN python3 -m pip download --no-deps --only-binary=:all: sherpa-onnx-core==2.0.1 -d /tmp/wheel \
 && python3 -m zipfile -e /tmp/wheel/sherpa_onnx_core-*.whl /tmp/wheel/x \
 && mkdir -p /src/.native/sherpa-onnx \
 && cp -r /tmp/wheel/x/sherpa_onnx/lib /src/.native/sherpa-onnx/lib \
 && echo 2.0.1 > /src/.native/sherpa-onnx/VERSION
COPY Cargo.toml Cargo.lock build.rs ./
COPY .cargo .cargo
COPY src src
# The workspace's other crates (tests and benchmarks): cargo reads their
# manifests even though only the hotline binary is built.
COPY crates crates
RUN cargo build --release --locked --bin hotline \
 && mkdir -p /out \
 && cp target/release/hotline /out/ \
 && cp .native/sherpa-onnx/lib/libsherpa-onnx-c-api.so .native/sherpa-onnx/lib/libonnxruntime.so /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/hotline hotline \
 && mkdir -p /var/lib/hotline /etc/hotline \
 && chown hotline /var/lib/hotline
# The binary finds the .so files next to itself (rpath $ORIGIN).
COPY --from=build /out/ /opt/hotline/
COPY models/README.md models/SHA256SUMS /opt/hotline/models/
ENV HOTLINE_MODELS_DIR=/opt/hotline/models
USER hotline
WORKDIR /var/lib/hotline
EXPOSE 8088
ENTRYPOINT ["/opt/hotline/hotline"]
CMD ["serve", "--config", "/etc/hotline/hotline.toml"]
