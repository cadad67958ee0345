# Dockerfile: the evpipe tools on Debian bookworm, for compose/docker-compose.yml (the pipeline
# and the event generator). Built with the Debian packages of `scripts/deps build`, the same
# set a developer machine builds with, then `make install` (optimised build, into /usr/local).
# The source tree stays in /opt/evpipe: the pipeline scripts, the contract and the SQL are run
# from there (pipelines/events-to-clickhouse.sh is the default command).
FROM debian:bookworm-20250929-slim

ARG EVPIPE_VERSION=0.1.0
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /opt/evpipe

COPY scripts/deps scripts/deps
RUN scripts/deps build && rm -rf /var/lib/apt/lists/*

COPY . .
RUN make install PREFIX=/usr/local VERSION="$EVPIPE_VERSION" && make clean

RUN useradd --system --home-dir /var/lib/evpipe --shell /usr/sbin/nologin evpipe \
	&& mkdir -p /var/lib/evpipe/state \
	&& chown -R evpipe:evpipe /var/lib/evpipe
USER evpipe
ENV EVPIPE_BIN=/usr/local/bin

CMD ["pipelines/events-to-clickhouse.sh"]
