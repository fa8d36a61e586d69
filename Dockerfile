# One image for the three services; the command chooses which one runs.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
COPY scenario ./scenario
RUN pip install --no-cache-dir .
ENV BIND_HOST=0.0.0.0
USER nobody
CMD ["python", "-m", "services.intake"]
