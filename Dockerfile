# One image for web, workers and beat. The GPU services run it with the NVIDIA runtime.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    JOURNEY_VAR_DIR=/var/lib/journey TORCH_HOME=/cache/torch FASTAI_HOME=/cache/fastai

RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 curl \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt requirements-nodeps.txt ./
RUN pip install --no-cache-dir -r requirements.txt \
 && pip install --no-cache-dir --no-deps -r requirements-nodeps.txt

COPY . .
RUN useradd --create-home --uid 1000 journey \
 && mkdir -p /var/lib/journey/media /cache/torch /cache/fastai \
 && chown -R journey:journey /var/lib/journey /cache \
 && JOURNEY_ENV=production SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v 0
USER journey

EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
