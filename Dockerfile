# The spacereg image: `spacereg serve` by default; the same image runs `spacereg migrate`,
# `spacereg keys` and `spacereg provider serve`. Build: docker build -t spacereg .

# Build the wheels of spacereg and of everything it needs, with build tools this stage only.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY common common
COPY federation federation
COPY migrations migrations
COPY registry registry
COPY storage storage
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Run: the wheels installed, no sources, no compilers, not root.
FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data --create-home spacereg
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels spacereg && rm -rf /wheels
USER spacereg
WORKDIR /data
ENV SPACEREG_DATA_DIR=/data \
    SPACEREG_HOST=0.0.0.0 \
    SPACEREG_PORT=8080 \
    PYTHONUNBUFFERED=1
EXPOSE 8080
# Liveness only: readiness (/readyz) is for the load balancer, a restart would not fix it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"SPACEREG_PORT\", \"8080\")}/healthz', timeout=2)"
ENTRYPOINT ["spacereg"]
CMD ["serve", "--no-migrate"]
