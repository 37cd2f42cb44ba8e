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
# gthread: a slow client (its FIN a round trip away) holds a thread, not the whole worker.
CMD ["gunicorn", "voicesurvey.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", \
     "--worker-class", "gthread", "--threads", "4"]
