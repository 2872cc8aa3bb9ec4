# The same install as `make install`: CPU torch first, then the project with the default model.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    OMP_WAIT_POLICY=PASSIVE \
    CHATBOT_DATA_DIR=/data \
    CHATBOT_SERVER__HOST=0.0.0.0
WORKDIR /app
RUN python -m venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH
RUN pip install --disable-pip-version-check -q 'pip>=25.3'
RUN pip install --disable-pip-version-check -q torch==2.13.0
COPY pyproject.toml README.md ./
COPY chatbot/ chatbot/
COPY ingest/ ingest/
RUN pip install --disable-pip-version-check -q '.[model]'
COPY prompts/ prompts/
COPY data/samples/ data/samples/
ENV CHATBOT_PROMPTS_DIR=/app/prompts
RUN useradd --create-home --uid 1000 chatbot && mkdir -p /data && chown chatbot /data
USER chatbot
VOLUME ["/data"]
EXPOSE 7860
# Ingestion runs from the same image: docker run -v docs:/docs IMAGE chatbot ingest /docs
CMD ["chatbot", "serve", "--ingest-samples"]
