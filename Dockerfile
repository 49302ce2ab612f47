# Multi-stage build: a static cardgate binary on an empty base, run as a
# non-root user. Run the container with a read-only root filesystem.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/cardgate ./cmd/cardgate

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/cardgate /cardgate
USER 65532:65532
ENTRYPOINT ["/cardgate"]
CMD ["serve", "-config", "/etc/cardgate/cardgate.yaml"]
