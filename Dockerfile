# mixpilot server image: the API (`mixpilot serve`), arq workers (`mixpilot worker`), migrations and gc.
#   docker build -t mixpilot .                                  # API, workers, Postgres, Redis, Chroma, S3
#   docker build --build-arg EXTRAS=api,memory,agent,s3,neural -t mixpilot:neural .   # + neural tools (torch)
# compose.yaml runs it with Postgres, Redis, a Chroma server and MinIO (README: "Running on more than one machine").

FROM python:3.11-slim AS build
ARG EXTRAS=api,memory,agent,s3
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# the source stays at /app (installed editable): `mixpilot migrate` reads migrations/ beside memory/
WORKDIR /app
COPY pyproject.toml README.md ./
COPY agents ./agents
COPY app ./app
COPY memory ./memory
COPY migrations ./migrations
COPY models ./models
COPY tools ./tools
COPY alembic.ini gradio_app.py ./
# a virtual environment copied whole into the runtime stage (no compilers or pip caches there)
RUN python -m venv /opt/mixpilot \
 && /opt/mixpilot/bin/pip install --upgrade pip \
 && /opt/mixpilot/bin/pip install -e ".[${EXTRAS}]"

FROM python:3.11-slim
ENV PATH=/opt/mixpilot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MIXPILOT_DATA_DIR=/data
RUN useradd --create-home --uid 10001 --user-group mixpilot \
 && mkdir -p /data \
 && chown mixpilot:mixpilot /data
COPY --from=build /opt/mixpilot /opt/mixpilot
COPY --from=build /app /app
WORKDIR /app
USER mixpilot
VOLUME ["/data"]
EXPOSE 8000
# liveness of the API (/health); the worker service in compose.yaml overrides it
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
ENTRYPOINT ["mixpilot"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
