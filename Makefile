# The two set-up commands of the README. Everything else is CMake and ctest.
#   make demo   install build packages, build, run vidcap on samples/
#   make test   install build + test packages, build release and ASan+UBSan, run every ctest
BUILD      ?= build
BUILD_SAN  ?= build-san
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all build build-san deps deps-test demo test test-release test-san bench bench-video tradeoff clean

all: build

deps:
	@sh scripts/deps.sh build

deps-test:
	@sh scripts/deps.sh test

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DVIDCAP_WERROR=ON $(CMAKE_ARGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-san: deps
	cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DVIDCAP_SANITIZE=ON -DVIDCAP_WERROR=ON $(CMAKE_ARGS) >/dev/null
	cmake --build $(BUILD_SAN) -j $(JOBS)

demo: build
	sh scripts/demo.sh $(BUILD)/vidcap

test-release: deps-test build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-san: deps-test build-san
	ctest --test-dir $(BUILD_SAN) --output-on-failure -j $(JOBS) -LE slow

test: test-release test-san

bench: deps-test build
	/usr/bin/python3 tools/bench/bench_nest.py --vidcap $(BUILD)/vidcap-bench

bench-video: deps-test build
	sh tools/bench/bench_video.sh $(BUILD)

tradeoff: deps-test build
	sh tools/bench/tradeoff.sh $(BUILD) $(MODEL)

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
