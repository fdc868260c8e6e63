# One image for the services; choose one with the command, e.g. `python -m services.scoring`.
# Production dependencies only: the dev extra (tests, the local SMTP sink, the demo) stays out.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml constraints.txt ./
COPY shared ./shared
COPY services ./services
RUN pip install -c constraints.txt . && useradd --system --uid 10001 ratings
USER ratings
ENV HTTP_HOST=0.0.0.0
EXPOSE 8001 8002 8003 8004
CMD ["python", "-m", "services.scoring"]
