# samsa: a Kafka-compatible event streaming broker.
GO      ?= go
PREFIX  ?= /usr/local
DESTDIR ?=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin

.PHONY: all build run test test-short race bench bench-txn failover soak kgo-suite rdkafka-suite gobench fuzz lint install clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/samsa ./cmd/samsa
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/samsa-bench ./cmd/samsa-bench
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/samsactl ./cmd/samsactl

# Start the broker on the embedded default: 127.0.0.1:9092, data in ./data.
run: build
	./$(BIN)/samsa -config config.toml

# Everything CI runs: vet, formatting, unit and integration tests (real
# clients against the real binary), fuzz seed corpora, under the race
# detector.
test: lint
	$(GO) test -race -timeout 20m ./...
	# Again with 4 segment files open at most: every idle one is closed and
	# reopened under the storage tests (segment/files.go).
	SAMSA_SEGMENT_FILES=4 $(GO) test -count=1 ./segment

test-short:
	$(GO) test -short ./...

# The bundled benchmark: a fresh samsa against franz-go's kfake, each in its
# own process, the same workloads on both (docs/BENCHMARKS.md); a few minutes.
bench: build
	./$(BIN)/samsa-bench compare

# Transactions, a fresh samsa per round, 3 rounds: an idempotent against a
# transactional producer committing every 100 ms, read_committed against
# read_uncommitted, consume-transform-produce, read_committed latency
# (docs/BENCHMARKS.md, "Transactions"); about 2 minutes.
bench-txn: build
	./$(BIN)/samsa-bench txn -rounds 3

# SIGKILL the primary of a hot standby pair under an acks=all load, promote
# the standby by hand and automatically, 3 rounds each: the outage and any
# loss (docs/BENCHMARKS.md, "Failover"); about 90 s.
failover: build
	./$(BIN)/samsa-bench failover -rounds 3

# A pair under mixed acks=all load for DURATION, the primary and the standby
# SIGKILLed in turn every 3 minutes: a line of RSS, fds, goroutines and disk
# per node every 30 s, then their trends and a loss check (docs/BENCHMARKS.md,
# "Soak"). By hand, not in CI.
DURATION ?= 30m
soak: build
	./$(BIN)/samsa-bench soak -duration $(DURATION)

# franz-go's own integration suite (pkg/kgo at the version go.mod pins)
# against a fresh samsa: groups, transactions, SCRAM; about two minutes.
# By hand, not in CI (make test runs franz-go's SCRAM tests only).
kgo-suite: build
	tools/kgo-suite.sh

# librdkafka's own integration tests against a fresh samsa; needs
# LIBRDKAFKA=path to a built, patched librdkafka (tools/rdkafka-suite/README.md).
rdkafka-suite: build
	tools/rdkafka-suite/run.sh

# Go micro-benchmarks of the storage and engine hot paths.
gobench:
	$(GO) test -run XXX -bench . -benchmem ./segment/... ./engine/...

# Run each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run XXX -fuzz FuzzValidateBatch -fuzztime $(FUZZTIME) ./segment/
	$(GO) test -run XXX -fuzz FuzzRecover -fuzztime $(FUZZTIME) ./segment/
	$(GO) test -run XXX -fuzz FuzzUnmarshalSnapshot -fuzztime $(FUZZTIME) ./segment/
	$(GO) test -run XXX -fuzz FuzzUnmarshalIndex -fuzztime $(FUZZTIME) ./segment/
	$(GO) test -run XXX -fuzz FuzzTxnIndex -fuzztime $(FUZZTIME) ./segment/
	$(GO) test -run XXX -fuzz FuzzParseMarker -fuzztime $(FUZZTIME) ./segment/
	$(GO) test -run XXX -fuzz FuzzDecompress -fuzztime $(FUZZTIME) ./segment/compress/
	$(GO) test -run XXX -fuzz FuzzParseRequest -fuzztime $(FUZZTIME) ./netio/
	$(GO) test -run XXX -fuzz FuzzFraming -fuzztime $(FUZZTIME) ./netio/
	$(GO) test -run XXX -fuzz FuzzResponseBody -fuzztime $(FUZZTIME) ./netio/kclient/
	$(GO) test -run XXX -fuzz 'FuzzRequest$$' -fuzztime $(FUZZTIME) ./engine/
	$(GO) test -run XXX -fuzz FuzzRequestAuthorized -fuzztime $(FUZZTIME) ./engine/
	$(GO) test -run XXX -fuzz FuzzCatalogImageApply -fuzztime $(FUZZTIME) ./engine/
	$(GO) test -run XXX -fuzz FuzzDecodeProduce -fuzztime $(FUZZTIME) ./engine/
	$(GO) test -run XXX -fuzz FuzzStream -fuzztime $(FUZZTIME) ./engine/
	$(GO) test -run XXX -fuzz FuzzSCRAMServer -fuzztime $(FUZZTIME) ./engine/
	$(GO) test -run XXX -fuzz FuzzAuthorize -fuzztime $(FUZZTIME) ./engine/acl/
	$(GO) test -run XXX -fuzz FuzzReplay -fuzztime $(FUZZTIME) ./engine/group/
	$(GO) test -run XXX -fuzz FuzzReplay -fuzztime $(FUZZTIME) ./engine/txn/
	$(GO) test -run XXX -fuzz FuzzRequests -fuzztime $(FUZZTIME) ./engine/txn/
	$(GO) test -run XXX -fuzz FuzzLZ4Link -fuzztime $(FUZZTIME) ./engine/replica/
	$(GO) test -run XXX -fuzz FuzzDump -fuzztime $(FUZZTIME) ./tools/logtool/
	$(GO) test -run XXX -fuzz FuzzVerify -fuzztime $(FUZZTIME) ./tools/logtool/

lint:
	@tools/dist/check-tracked
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed:"; gofmt -l .; exit 1)
	$(GO) vet ./...

# Install the binaries, the systemd unit and /etc/samsa/config.toml (an
# existing config is kept). PREFIX and DESTDIR as usual; SYSCONFDIR and
# UNITDIR follow PREFIX unless set. The installed config keeps its data in
# /var/lib/samsa, the unit's StateDirectory.
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(if $(filter /usr/local,$(PREFIX)),/etc,$(PREFIX)/etc))
UNITDIR    ?= $(if $(filter /usr/local,$(PREFIX)),/etc/systemd/system,$(PREFIX)/lib/systemd/system)
install: build
	install -D -m 0755 $(BIN)/samsa $(DESTDIR)$(PREFIX)/bin/samsa
	install -D -m 0755 $(BIN)/samsactl $(DESTDIR)$(PREFIX)/bin/samsactl
	install -D -m 0755 $(BIN)/samsa-bench $(DESTDIR)$(PREFIX)/bin/samsa-bench
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/bin/env samsa|$(PREFIX)/bin/samsa|' -e 's|/etc/samsa/config.toml|$(SYSCONFDIR)/samsa/config.toml|' \
		-e 's|/usr/local/share/doc/samsa|$(PREFIX)/share/doc/samsa|' tools/dist/systemd/samsa.service > $(DESTDIR)$(UNITDIR)/samsa.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/samsa.service
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/samsa/README.md
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/samsa/config.toml ]; then \
		echo "keeping $(DESTDIR)$(SYSCONFDIR)/samsa/config.toml"; \
	else \
		install -d $(DESTDIR)$(SYSCONFDIR)/samsa; \
		sed -e 's|^data_dir = .*|data_dir = "/var/lib/samsa"|' -e 's|^listen = ""$$|listen = "127.0.0.1:9644"|' config.toml > $(DESTDIR)$(SYSCONFDIR)/samsa/config.toml; \
		chmod 0644 $(DESTDIR)$(SYSCONFDIR)/samsa/config.toml; \
	fi

clean:
	rm -rf $(BIN)
