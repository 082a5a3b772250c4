# syntax=docker/dockerfile:1
# One image for every dunning process: the worker (default), the API (`dunning api ...`) and
# the migrations (`alembic upgrade head`). Build: `docker build -t dunning .`
FROM python:3.11.15-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 dunning \
    && useradd --system --uid 10001 --gid dunning --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin dunning

WORKDIR /app

# Runtime dependencies first, read from pyproject.toml (never the dev extra), so that this
# layer stays cached while only the code changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep=chr(10))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The packages (pyproject's setuptools find include), the worker module, and the data read
# from the source tree at run time: email templates (activities/email_render.py), policies
# (DUNNING_POLICY is a path relative to /app) and the Alembic migrations.
COPY workflows ./workflows
COPY activities ./activities
COPY starter ./starter
COPY models ./models
COPY policies ./policies
COPY standins ./standins
COPY templates ./templates
COPY locales ./locales
COPY migrations ./migrations
COPY alembic.ini worker.py README.md ./

# Editable, without dependencies (installed above): it adds the `dunning` console script and
# keeps every entry point importing from /app, where templates/, alembic.ini and migrations/
# are found next to the packages (email_render.py and models/migrate.py look them up there).
# The code stays root-owned: readable, not writable, by the process.
RUN pip install --no-deps --editable . && chmod -R a+rX /app

USER dunning

CMD ["python", "worker.py"]
