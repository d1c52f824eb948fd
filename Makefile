# satd — see README.md. `make run` starts the demo, `make test` runs the tests.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
# Release builds leave out HTTP/2 (never used on the box; saves ~0.5 MB) and,
# with satd_nodemo, the demo, simulated cards and `satd lbsim` (developer
# tools; ~0.18 MB). `make run` and the tests build without these tags.
TAGS     := nethttpomithttp2 satd_nodemo
GOFLAGS_STATIC := CGO_ENABLED=0
# Cold packages (configuration, JSON, the updater's certificates) are built
# without inlining: ~0.33 MB less; the list and why: cmd/satd/noinline.txt.
NOINLINE := $(shell sed -n 's/^\([a-z][^ ]*\)$$/\1/p' cmd/satd/noinline.txt)
GCFLAGS  := $(foreach p,$(NOINLINE),-gcflags=$(p)=-l)
BUILD    := $(GO) build -trimpath -buildvcs=false -tags "$(TAGS)" -ldflags "$(LDFLAGS)" $(GCFLAGS)
# GOOS/GOARCH/variant triples for `make cross`: name:GOARCH:variable=value
CROSS    := armv7:arm:GOARM=7 armv5:arm:GOARM=5 arm64:arm64: mipsle:mipsle:GOMIPS=softfloat
QEMU_TESTS := arm:GOARM=7:qemu-arm-static mipsle:GOMIPS=softfloat:qemu-mipsel-static

.PHONY: all build run test test-cross cross bench fuzz fmt lint docs clean buildroot-check release e2e-stream bench-stream hostile

all: build

build:
	@mkdir -p dist
	$(BUILD) -o dist/satd ./cmd/satd

run:
	@.ci/deps run
	$(GO) run ./cmd/satd -demo

test:
	@.ci/deps test
	$(GO) vet ./...
	$(GO) test -race ./...
	@# The ATR corpus counts (pcsc-tools' smartcard_list.txt), printed; its
	@# status is the recipe's (no pipe to hide a failure behind).
	@out=$$($(GO) test -count=1 -run TestATRCorpus -v ./cardreader/iso7816 2>&1); rc=$$?; \
		printf '%s\n' "$$out" | grep -v '^=== RUN' || true; exit $$rc
	@# The PC/SC reader against pcscd + vpcd + two virtual cards: the APDU
	@# round-trip time through pcscd, printed.
	@out=$$($(GO) test -count=1 -run TestPCSCVirtualCards -v ./cardreader/pcsc 2>&1); rc=$$?; \
		printf '%s\n' "$$out" | grep -E 'round-trip|SKIP|^(ok|FAIL|--- FAIL)' || true; exit $$rc

# Cross-architecture test suite under qemu-user (no -race on 32-bit targets).
test-cross:
	@.ci/deps cross
	@set -e; for t in $(QEMU_TESTS); do \
		arch=$${t%%:*}; rest=$${t#*:}; var=$${rest%%:*}; qemu=$${rest#*:}; \
		echo "== go test GOARCH=$$arch $$var under $$qemu"; \
		env CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $$var SATD_CROSS_TEST=1 \
			$(GO) test -short -exec $$qemu ./...; \
	done

cross:
	@mkdir -p dist
	@set -e; for t in $(CROSS); do \
		name=$${t%%:*}; rest=$${t#*:}; arch=$${rest%%:*}; var=$${rest#*:}; \
		env $(GOFLAGS_STATIC) GOOS=linux GOARCH=$$arch $$var $(BUILD) -o dist/satd-linux-$$name ./cmd/satd; \
		echo "dist/satd-linux-$$name $$(stat -c %s dist/satd-linux-$$name) bytes"; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Fuzz every target for FUZZTIME each (make test already runs their seed corpora).
FUZZTIME ?= 10s
fuzz:
	@set -e; pkgs=$$($(GO) list ./...); for pkg in $$pkgs; do \
		list=$$($(GO) test -list '^Fuzz' $$pkg); \
		for f in $$(printf '%s\n' "$$list" | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

fmt:
	gofmt -w $$(git ls-files '*.go')

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')) || exit 1; test -z "$$out" || { printf '%s\n' "$$out"; exit 1; }
	$(GO) vet ./...
	@for t in $(CROSS); do rest=$${t#*:}; arch=$${rest%%:*}; var=$${rest#*:}; \
		env GOOS=linux GOARCH=$$arch $$var $(GO) vet ./... || exit 1; done

# Issue 16's attacks against a built satd, one case per row, each on a fresh
# daemon on loopback ports with a deadline; prints `held N/N` (bench/hostile).
# The OTA rows build satd again with a version stamped (same flags).
hostile: build
	$(GO) run ./bench/hostile -satd dist/satd -go $(GO)

# Regenerate the configuration reference in README.md from the code.
docs:
	$(GO) run ./cmd/satd config-reference -readme README.md

# The Buildroot external tree: style checks, shellcheck, default configs, and
# the init script exercised for real in a BusyBox root.
buildroot-check:
	@.ci/deps buildroot
	@mkdir -p dist
	$(GO) build -o dist/satd-host ./cmd/satd
	$(GO) run ./buildroot/brcheck -satd dist/satd-host buildroot
	SATD_BUILDROOT_CHECK=1 SATD_REQUIRE_STREAM=1 $(GO) test -count=1 ./buildroot/...

# The seed's scenario end to end: two Icecast ingests fed by ffmpeg, two satd
# daemons relaying with URL auth (200 ms backend) and shared re-admission
# tokens, HAProxy on /readyz with X-Forwarded-For, 2000 listeners; kills the
# primary ingest, then a relay, and prints the figures (free ports, ~3 min).
e2e-stream:
	@.ci/deps stream
	bash bench/stream/e2e.sh

# Icecast 2.4 and satd side by side (RSS, CPU, reconnect storm); see docs/stream.md.
bench-stream:
	@.ci/deps stream
	bash bench/stream/bench.sh

# Signed release artefacts for every target (see docs/update.md).
release:
	@set -e; for t in "armv7 arm GOARM=7" "armv5 arm GOARM=5" "arm64 arm64" "mipsle mipsle GOMIPS=softfloat"; do \
		set -- $$t; buildroot/release/make-release.sh $(VERSION) satrx-$$1 $$2 $$3; done

clean:
	rm -rf dist
