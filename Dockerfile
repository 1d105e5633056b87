# lstm-demo: the web app on port 7860, data on the /data volume.
#   docker build -t lstm-demo .                      # CPU (default)
#   docker build -t lstm-demo:cuda --build-arg BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#                --build-arg TORCH="torch" .         # CUDA: the default PyPI torch wheel is a CUDA build
#   docker run -p 7860:7860 -v lstm-demo-data:/data lstm-demo
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    LSTM_DEMO_HOME=/data

# CUDA base images have no Python of their own
RUN if ! command -v python3 >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
RUN pip install --no-cache-dir ${TORCH}
COPY pyproject.toml README.md app.py ./
COPY lstm_demo ./lstm_demo
COPY assets ./assets
# editable: the app finds its example data in /app/assets beside the package; the `postgres` extra
# (psycopg) lets LSTM_DEMO_DB_URL=postgresql+psycopg://... work in the container
RUN pip install --no-cache-dir -e ".[postgres]"

# the app runs as UID 1000; Ubuntu 24.04 images (the CUDA bases) already have one (`ubuntu`)
RUN (getent passwd 1000 >/dev/null || useradd --create-home --uid 1000 app) \
    && mkdir -p /data && chown 1000:1000 /data
USER 1000
VOLUME ["/data"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python3 -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/' % os.environ['GRADIO_SERVER_PORT'])"
CMD ["python3", "app.py"]
