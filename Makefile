# SPDX-License-Identifier: GPL-2.0
# Cohort: several Linux kernel instances acting as one machine.
#
#   make check    host tests + selftests on a 2-node cluster (the CI job)
#   make demo     boot 2 nodes and show them up and seeing each other
#   make bench    benchmarks on 2 nodes: results in build/bench/*.jsonl, plots *.svg
#   make check-debug   the tests on a kernel with lock validation
#   make          build everything (kernel cached in /var/cache/cohort)
#   make deb      the kernel and the node's modules and tools as Debian packages, in build/deb
#
# Each step installs or builds what it needs (run as root on Debian 12).

.PHONY: all deps kernel modules initramfs cli check check-debug demo bench host-test clean deb

all:
	scripts/build-all.sh

deps:
	scripts/deps.sh

kernel: deps
	scripts/kernel.sh

modules: kernel
	scripts/modules.sh

initramfs: modules
	scripts/initramfs.sh

cli:
	cargo build --release -p cohort

deb: deps
	scripts/deb.sh

host-test:
	cargo test --workspace --release

check:
	scripts/check.sh

# The same tests on a kernel with lock validation (its own cache; slower).
check-debug:
	COHORT_DEBUG=1 scripts/check.sh

demo:
	scripts/demo.sh

bench:
	scripts/bench.sh

clean:
	rm -rf build target
