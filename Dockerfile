# SPDX-License-Identifier: Apache-2.0
# Dockerfile: the evpipe tools on Debian bookworm, for compose/docker-compose.yml (the pipeline
# and the event generator), in two stages:
# - build: the Debian packages of `scripts/deps build` (compilers, -dev packages), the same set
#   a developer machine builds with, then `make deb` (optimised build, packaged with its
#   Depends derived from the libraries it links);
# - runtime: a slim bookworm with that package installed by apt, which brings exactly its
#   Depends (the runtime libraries) and nothing of the build.
# The version is the tree's VERSION file (what --version and the package say). The default
# command is the installed job, evpipe-events-to-clickhouse (/usr/bin); its contract and SQL
# are in /usr/share/evpipe.
FROM debian:bookworm-20250929-slim AS build

ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src

COPY scripts/deps scripts/deps
RUN scripts/deps build && rm -rf /var/lib/apt/lists/*

COPY . .
RUN make deb DEB=/evpipe.deb

FROM debian:bookworm-20250929-slim

ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /evpipe.deb /tmp/evpipe.deb
RUN apt-get update \
	&& apt-get install -y --no-install-recommends /tmp/evpipe.deb \
	&& rm -rf /var/lib/apt/lists/* /tmp/evpipe.deb \
	&& useradd --system --uid 10001 --user-group --home-dir /var/lib/evpipe \
		--shell /usr/sbin/nologin evpipe \
	&& mkdir -p /var/lib/evpipe/state \
	&& chown -R evpipe:evpipe /var/lib/evpipe
USER 10001:10001
WORKDIR /var/lib/evpipe

CMD ["evpipe-events-to-clickhouse"]
