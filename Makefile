# Thin wrapper around Meson/Ninja.  The two commands a newcomer needs:
#   make run    install Debian packages, build, write a dev config, serve
#   make test   install test packages, build with ASan+UBSan, run all tests
PYTHON ?= /usr/bin/python3
FUZZ_SECONDS ?= 60

.PHONY: all deps run test unit pytest fuzz fuzz-replay bench install clean

all: deps build/build.ninja
	ninja -C build
	@echo "built build/mailfort"

deps:
	@scripts/deps.sh build

build/build.ninja:
	meson setup build --buildtype=release

build-test/build.ninja:
	meson setup build-test --buildtype=debug -Db_sanitize=address,undefined

build-fuzz/build.ninja:
	CC=clang meson setup build-fuzz --buildtype=debug -Dfuzz=true \
		-Db_sanitize=address,undefined -Db_lundef=false

run: all
	scripts/devsetup.sh
	build/mailfort serve -c dev/mailfort.ini

test:
	@scripts/deps.sh test
	$(MAKE) build-test/build.ninja
	ninja -C build-test
	meson test -C build-test --print-errorlogs
	$(MAKE) fuzz-replay
	MAILFORT_BIN=$(CURDIR)/build-test/mailfort $(PYTHON) -m pytest -q tests

# Every fuzz target over its seed corpus, no fuzzing: a deterministic
# regression check that make test can afford.
fuzz-replay:
	@scripts/deps.sh fuzz
	$(MAKE) build-fuzz/build.ninja
	ninja -C build-fuzz $$(ninja -C build-fuzz -t targets all | \
		grep -oE '^fuzz_[a-z0-9_]+:' | tr -d ':' | sort -u)
	scripts/fuzz.sh build-fuzz 0

unit: build-test/build.ninja
	ninja -C build-test
	meson test -C build-test --print-errorlogs

fuzz:
	@scripts/deps.sh fuzz
	$(MAKE) build-fuzz/build.ninja
	ninja -C build-fuzz
	scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

bench: all
	@scripts/deps.sh bench
	$(PYTHON) bench/run.py --mailfort $(CURDIR)/build/mailfort

install: all
	meson install -C build

clean:
	rm -rf build build-test build-fuzz
