# palavra: one image for the API (`palavra serve`) and the job workers (`palavra worker --backend celery`).
# Build: docker build -t palavra .      Run the whole stack: see docker-compose.yml and docs/deploy.md.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/palavra
ENV PATH=/opt/palavra/bin:$PATH
# the CPU build of torch (the default index would pull the CUDA build, several GB)
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
WORKDIR /src
COPY pyproject.toml README.md ./
COPY models ./models
COPY pipelines ./pipelines
COPY services ./services
RUN pip install .

FROM python:3.11-slim
ENV PATH=/opt/palavra/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PALAVRA_HOME=/var/lib/palavra \
    PALAVRA_DATA_ROOT=/srv/palavra-data
COPY --from=build /opt/palavra /opt/palavra
RUN useradd --create-home --uid 10001 palavra \
    && mkdir -p /var/lib/palavra /srv/palavra-data \
    && chown palavra:palavra /var/lib/palavra /srv/palavra-data
USER palavra
WORKDIR /home/palavra
EXPOSE 8000
CMD ["palavra", "serve", "--host", "0.0.0.0", "--port", "8000"]
