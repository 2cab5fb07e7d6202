# Production image: gunicorn serves the app; the same image runs the worker and the scheduler.
# Migrations are a release step (`flask db upgrade`, the compose "migrate" service), never run by create_app.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    APP_ENV=production \
    FLASK_APP="webapp:create_app_or_exit()"

WORKDIR /app
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY webapp ./webapp
COPY simulator ./simulator
COPY templates ./templates
COPY static ./static
COPY migrations ./migrations
COPY worker.py gunicorn.conf.py ./
RUN mkdir -p /app/instance /data && chown app:app /app/instance /data

USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"
CMD ["gunicorn", "--config", "gunicorn.conf.py", "webapp:create_app_or_exit()"]
