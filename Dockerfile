# The otcdesk service image (deploy/compose.yaml builds it for the service instances and the Ray head, so the
# Ray client and cluster share one Python and one Ray version, and Ray workers can import otcdesk).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OTCDESK_DATA_DIR=/var/lib/otcdesk

# fonts for the trade confirmation PDF (scripts/setup_fonts.sh installs the same on a host)
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-droid-fallback fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml ./
COPY otcdesk ./otcdesk
# EXTRAS: "ray" lets the service reach a Ray cluster (RAY_ADDRESS); add ",gpu" for CuPy (OTCDESK_BACKEND=cupy)
ARG EXTRAS=ray
RUN pip install ".[${EXTRAS}]" && rm -rf /src

RUN useradd --system --create-home --uid 10001 otcdesk \
    && mkdir -p /var/lib/otcdesk && chown otcdesk /var/lib/otcdesk
USER otcdesk
WORKDIR /home/otcdesk
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/api/health', timeout=4)"
CMD ["otcdesk", "serve", "--host", "0.0.0.0", "--port", "8080"]
