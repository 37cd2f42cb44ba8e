FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY voicesurvey voicesurvey
COPY campaigns campaigns
COPY contacts contacts
COPY calls calls
COPY hooks hooks
COPY locale locale
COPY templates templates
COPY manage.py ./
RUN pip install --no-cache-dir .
RUN DATABASE_URL=sqlite:////tmp/build.sqlite3 SECRET_KEY=build python manage.py collectstatic --noinput
EXPOSE 8000
# granian: ~0.35 ms less CPU per webhook than gunicorn gthread (docs/benchmarks-load.md). The
# alternative, as before: gunicorn voicesurvey.wsgi:application --bind 0.0.0.0:8000 --workers 3
# --worker-class gthread --threads 4 (docs/operating.md#deployment).
CMD ["granian", "--interface", "wsgi", "voicesurvey.wsgi:application", "--host", "0.0.0.0", \
     "--port", "8000", "--workers", "3", "--blocking-threads", "4", "--no-ws", \
     "--respawn-failed-workers"]
