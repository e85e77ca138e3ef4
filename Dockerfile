# One image for every process of the stack: `socialpost migrate | worker | beat | flower |
# sandbox` (docker-compose.yml picks the command). The package is installed, not mounted,
# so the container runs exactly what `pip install .` ships (migrations included).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SOCIALPOST_STATE_DIR=/app/state

# Sources go to /src only for the build; the installed package is what runs.
COPY . /src
RUN pip install /src && rm -rf /src

# A user of our own: workers handle customers' keys and never need root.
RUN useradd --create-home --home-dir /app --uid 10001 socialpost \
    && mkdir -p /app/state && chown -R socialpost:socialpost /app
USER socialpost
WORKDIR /app

CMD ["socialpost", "--help"]
