# gridmap in a container: built against Debian bookworm's GEOS 3.11.
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libgeos-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -o /out/gridmap ./cmd/gridmap

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgeos-c1v5 ca-certificates postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/gridmap /usr/local/bin/gridmap
# The data directory keeps the first admin's password file (a volume in
# docker-compose.yml, so it outlives the container).
RUN mkdir -p /var/lib/gridmap && chown nobody /var/lib/gridmap
ENV GRIDMAP_DATA=/var/lib/gridmap
WORKDIR /var/lib/gridmap
USER nobody
EXPOSE 8080
ENTRYPOINT ["gridmap"]
# With DATABASE_URL set (as docker-compose.yml does) gridmap uses that
# database and runs no PostgreSQL of its own.
CMD ["serve", "--addr", "0.0.0.0:8080", "--demo"]
