# One image, three roles: `openelb operator`, `openelb controller`,
# `openelb speaker`. keepalived is included for the speaker's vip mode.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
COPY speaker/ speaker/
ARG VERSION=0.1.0
ARG COMMIT=unknown
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath \
      -ldflags "-s -w -X github.com/openelb/openelb-operator/internal/version.Version=${VERSION} -X github.com/openelb/openelb-operator/internal/version.Commit=${COMMIT}" \
      -o /out/openelb ./cmd/openelb

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends keepalived iproute2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/openelb /usr/local/bin/openelb
COPY LICENSE /licenses/LICENSE
# The operator and controller run as this user; the speaker DaemonSet sets
# runAsUser 0 with NET_ADMIN, NET_RAW and NET_BIND_SERVICE only.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/openelb"]
