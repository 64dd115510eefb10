# SPDX-License-Identifier: GPL-2.0
# Common settings for Cohort's build scripts. Source it; do not run it.

set -euo pipefail

COHORT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything expensive (the kernel tree and its build) lives outside the work
# tree so that a fresh clone reuses it.
# COHORT_CACHE names the Cohort kernel's cache; the debug kernel's is
# $COHORT_CACHE-debug. A value already ending in -debug (inherited from a
# script that sourced this with COHORT_DEBUG=1) is taken back to its base.
COHORT_CACHE=${COHORT_CACHE:-/var/cache/cohort}
COHORT_CACHE=${COHORT_CACHE%-debug}
# Per-clone outputs: modules, initramfs, selftest binaries, cluster state;
# the debug kernel's go to $COHORT_BUILD/debug (taken back the same way).
COHORT_BUILD=${COHORT_BUILD:-$COHORT_ROOT/build}
COHORT_BUILD=${COHORT_BUILD%/debug}
# The debug kernel's outputs, whichever kernel this run builds.
COHORT_DEBUG_BUILD=$COHORT_BUILD/debug

# COHORT_DEBUG=1 builds and tests the debug kernel (config/debug.config on top:
# lockdep, atomic-sleep checks, kmemleak, debug objects), in its own cache
# and build directories.
KERNEL_FRAGMENTS=("$COHORT_ROOT/config/cohort.config")
if [ "${COHORT_DEBUG:-0}" = 1 ]; then
	COHORT_CACHE=$COHORT_CACHE-debug
	COHORT_BUILD=$COHORT_DEBUG_BUILD
	KERNEL_FRAGMENTS+=("$COHORT_ROOT/config/debug.config")
fi

KERNEL_TARBALL=/usr/src/linux-source-6.12.tar.xz
KERNEL_DIR=$COHORT_CACHE/kernel
KERNEL_SRC=$KERNEL_DIR/src
KERNEL_OBJ=$KERNEL_DIR/build

# The kernel and its modules are built with Debian's rustc (it ships the
# matching core sources); host crates keep using the rustup toolchain.
KERNEL_RUSTC=/usr/bin/rustc
KERNEL_RUSTDOC=/usr/bin/rustdoc
BINDGEN=${BINDGEN:-$HOME/.cargo/bin/bindgen}
BINDGEN_VERSION=0.73.2

JOBS=${JOBS:-$(nproc)}

# kmake ARGS...: make in the cached kernel tree with the kernel toolchain.
kmake() {
	PATH=/usr/bin:$PATH make -C "$KERNEL_SRC" O="$KERNEL_OBJ" LLVM=1 \
		RUSTC="$KERNEL_RUSTC" HOSTRUSTC="$KERNEL_RUSTC" \
		RUSTDOC="$KERNEL_RUSTDOC" BINDGEN="$BINDGEN" "$@"
}

# log STEP MESSAGE: one progress line on stderr.
log() {
	local step=$1
	shift
	printf '[%s] %s\n' "$step" "$*" >&2
}

die() {
	log error "$*"
	exit 1
}

# run_with_progress STEP LOGFILE CMD...: run a long command with its output in
# LOGFILE, printing its latest line every 30 s; on failure show the tail.
run_with_progress() {
	local step=$1 logfile=$2 start pid rc=0
	shift 2
	start=$(date +%s)
	"$@" >"$logfile" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		local i
		for i in $(seq 30); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 1
		done
		kill -0 "$pid" 2>/dev/null || break
		log "$step" "$(($(date +%s) - start)) s: $(tail -n 1 "$logfile" | cut -c1-100)"
	done
	wait "$pid" || rc=$?
	if [ "$rc" -ne 0 ]; then
		tail -n 40 "$logfile" >&2
		die "$step failed (exit $rc); full log in $logfile"
	fi
	log "$step" "done in $(($(date +%s) - start)) s"
}
