# GPU image of bubblenet: TensorFlow's CUDA build with the package installed.
# Build with ./build.sh; see README.md for a `docker run` example.
FROM tensorflow/tensorflow:2.21.0-gpu

LABEL org.opencontainers.image.title="bubblenet" \
      org.opencontainers.image.description="Infrared bubble detection in Spitzer surveys (TensorFlow/Keras SSD)"

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg

WORKDIR /opt/bubblenet
COPY pyproject.toml setup.cfg README.md ./
COPY bubblenet ./bubblenet
COPY experiments ./experiments

# No extra: TensorFlow (CUDA build) comes from the base image and must not be
# replaced by the CPU wheel.
RUN python3 -m pip install --no-cache-dir . \
    && bubblenet --version

RUN useradd --create-home --uid 1000 bubblenet
USER 1000:1000
WORKDIR /data
ENTRYPOINT ["bubblenet"]
CMD ["--help"]
