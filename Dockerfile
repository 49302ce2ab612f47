# Multi-stage build.
#   gateway (the last stage, so the default): a static cardgate binary on
#     an empty base, run as a non-root user. Run it with a read-only root
#     filesystem (docker-compose.yml does); it writes nothing but its log.
#   tools: the same binary with openssl, ssh-keygen, curl and jq, for the
#     compose setup job (deploy/init.sh) and for trying the gateway.
# The binary is built with CGO_ENABLED=0, so it has no PKCS#11 (HSM) key
# backend: an HSM deployment needs a cgo build on a glibc base instead.
# -tags grpcnotrace keeps golang.org/x/net/trace (and with it
# html/template) out of the binary: gRPC comes in only through
# OpenTelemetry's OTLP packages, and html/template's reflective method
# calls stop the linker from dropping unused methods. The binary's mapped
# code and tables shrink from about 30 MB to 20 MB (resident memory, see
# README "Against the naive peer"); behaviour is the same.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -tags grpcnotrace -ldflags "-s -w -X main.version=${VERSION}" -o /out/cardgate ./cmd/cardgate

FROM debian:bookworm-slim AS tools
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates curl jq openssh-client openssl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/cardgate /usr/local/bin/cardgate
COPY deploy/init.sh deploy/try.sh /deploy/
# The output directories exist in the image, owned by the runtime user,
# so that the empty named volumes mounted on them start out writable.
RUN groupadd -g 65532 cardgate \
 && useradd -u 65532 -g 65532 -M -d /nonexistent -s /usr/sbin/nologin cardgate \
 && mkdir -p /out/gateway /out/processor /out/client /out/probe /out/vault /out/audit \
 && chown 65532:65532 /out/gateway /out/processor /out/client /out/probe /out/vault /out/audit
USER 65532:65532
ENTRYPOINT []
CMD ["bash", "/deploy/init.sh"]

FROM scratch AS gateway
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/cardgate /cardgate
USER 65532:65532
# 8443: the caller API (mTLS). 9464: the admin listener, when admin.addr is set.
EXPOSE 8443 9464
ENTRYPOINT ["/cardgate"]
CMD ["serve", "-config", "/etc/cardgate/cardgate.yaml"]
