# tinycabac: the two quick-start commands are `make demo` and `make test`.
# Everything installs into .venv (Python) and, for the firmware, fuzzing
# and MicroPython tiers, from Debian's packages (apt-get, as root or sudo).

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PLATFORMIO_CORE_DIR ?= $(CURDIR)/.pio/core
export PLATFORMIO_SETTING_ENABLE_TELEMETRY := No

# The portability tier (tests/test_portability.py) adds a big-endian
# cross-compiler run under qemu-user and an AVR toolchain (16-bit int) run
# under simavr: about 70 MB to download, 420 MB installed.
SYSTEM_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang libclang-rt-14-dev valgrind cppcheck cmake \
	gcc-s390x-linux-gnu libc6-dev-s390x-cross qemu-user gcc-avr avr-libc simavr
SYSTEM_TOOLS := arm-none-eabi-gcc qemu-system-arm clang valgrind cppcheck cmake s390x-linux-gnu-gcc qemu-s390x avr-gcc simavr
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test setup system-deps golden bench bench-all mpy fuzz sanitize firmware-report clean

demo: setup
	$(VENV)/bin/tinycabac demo

test: setup system-deps
	$(VPY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

# Python side: the package (compiling its C core through cffi) and the tools
# the test tiers drive.  Re-runs only when pyproject.toml or the C sources change.
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py decoder_c/tinycabac.c decoder_c/tinycabac.h decoder_c/tc_model.h \
		decoder_c/tflite/tc_tflite.c decoder_c/tflite/tc_tflite.h $(wildcard host/tinycabac/csrc/*) host/tinycabac/_build_native.py
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -e '.[test,runtime,device]'
	touch $@

system-deps:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages for:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); \
	fi
	@# Node.js runs MicroPython's webassembly port (a 32-bit port without the native emitter)
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		echo "installing Debian packages for: node npm"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm; \
	fi

# Regenerate the golden vectors (only together with a format version bump).
golden: setup
	$(VPY) tests/golden/make_golden.py
	$(VPY) tests/regressions/restamp.py

# Benchmarks are not tests: they print figures next to anchors measured in
# the same run and write the reports under docs/.  `bench` is the quick set,
# NNCodec (the lossless anchor, built once in bench/.venv-nncodec, about
# 4 minutes) included; `bench-all` adds the long runs.
bench: setup system-deps
	$(VPY) -m pip install --quiet -e '.[bench]'
	bash bench/setup_nncodec.sh
	$(VPY) bench/bench_lossless.py
	$(VPY) bench/firmware_report.py
	$(VPY) bench/bench_micropython.py --write docs/BENCH_MICROPYTHON.md
	$(VPY) bench/bench_updates.py
	$(VPY) bench/federated.py

bench-all: bench
	$(VPY) bench/bench_quantized.py
	$(VPY) bench/bench_accuracy.py

firmware-report: setup system-deps
	$(VPY) bench/firmware_report.py

# Precompiled MicroPython modules: firmware/micropython/dist/<arch>/tcdec.mpy and tcdec_viper.mpy
mpy: setup
	$(VPY) firmware/micropython/build_mpy.py --clean

# Full fuzzing run (CI runs each target for TINYCABAC_FUZZ_SECONDS inside `make test`).
fuzz: system-deps
	decoder_c/fuzz/run_fuzzers.sh 60

# The encoder's C core and cffi binding under ASan + UBSan, built into
# build/sanitize beside the normal install (docs/FUZZING.md; about 4 minutes).
sanitize: setup
	PYTHON=$(VPY) tests/sanitize.sh

clean:
	rm -rf build .pio .cache firmware/.pio firmware/micropython/dist $(VENV) host/tinycabac/_native*.so
	-$(MAKE) -C decoder_c/fuzz clean
