# s3mount build, test and demo. `make help` lists the targets.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
MOUNT     ?= /tmp/s3mount-demo
FUZZTIME  ?= 5s
TESTFLAGS ?=

.PHONY: help build deps demo test fuzz bench check clean

help:
	@echo "make demo    mount sample MAAP workspace paths from a local MinIO at $(MOUNT) (Ctrl-C stops)"
	@echo "make test    run every test under -race, shuffled: unit tests, real FUSE mounts over MinIO, a 3-minute soak, short fuzzing"
	@echo "make build   build bin/s3mount"
	@echo "make fuzz    fuzz the parsers and the name mapping for FUZZTIME each (default $(FUZZTIME))"
	@echo "make bench   s3mount against the SDK's ceiling, s3fs and rclone on a local MinIO, side by side (BENCH_QUICK=1: under 2 minutes; see docs/benchmarks.md)"
	@echo "make check   gofmt and go vet"

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/s3mount ./cmd/s3mount

bin/s3mount-rig: $(shell find cmd/s3mount-rig internal/rig -name '*.go' 2>/dev/null) go.mod
	$(GO) build -o $@ ./cmd/s3mount-rig

# deps installs what the demo and the tests need: MinIO, and FUSE support.
deps:
	./scripts/install-minio.sh
	./scripts/ensure-fuse.sh
	./scripts/ensure-tools.sh

demo: deps build bin/s3mount-rig
	./bin/s3mount-rig --s3mount bin/s3mount $(MOUNT)

# The notebook test drives Debian's python3 with h5py, NumPy, pandas,
# netCDF4 and xarray; only the tests need them.
test: deps check
	./scripts/ensure-python-libs.sh
	S3MOUNT_REQUIRE_RIG=1 $(GO) test -race -count=1 -shuffle=on -timeout 25m $(TESTFLAGS) ./...; \
		status=$$?; ./scripts/cleanup-mounts.sh; exit $$status
	$(MAKE) fuzz

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzChildName$$' -fuzztime $(FUZZTIME) ./fs
	$(GO) test -run '^$$' -fuzz '^FuzzParseExpiry$$' -fuzztime $(FUZZTIME) ./creds
	$(GO) test -run '^$$' -fuzz '^FuzzParseMAAP$$' -fuzztime $(FUZZTIME) ./creds
	$(GO) test -run '^$$' -fuzz '^FuzzPartAt$$' -fuzztime $(FUZZTIME) ./fs
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeKey$$' -fuzztime $(FUZZTIME) ./internal/s3bucket

# bench needs root; it installs fio, h5py, s3fs and rclone from Debian's
# packages when they are missing. Timings are judged here, never in tests.
bench: deps build
	./scripts/bench.sh

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
