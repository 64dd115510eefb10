#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make bench`: build everything, boot a 2-node cluster, load kmsg and
# popcorn on both nodes, run each benchmark below, tear the cluster down;
# then the same on a 2-node cluster booted with the shared-memory
# transport for the benchmarks that need it; then draw the history of
# every benchmark.
#
# Each run of a benchmark appends one JSON record to build/bench/NAME.jsonl
# (its console output goes to build/bench/NAME.log) and the plot of all
# the runs so far is build/bench/NAME.svg. Exits 1 if a benchmark could not
# run; a missed target is in the record and the output, not a failure.
. "$(dirname "$0")/lib.sh"

# The benchmarks, in order: NAME [ARGS] for `cohort bench NAME [ARGS]`.
# A new benchmark is one more line. auth reloads kmsg on both nodes (with
# and without authentication): it goes last, so that the others run on
# nodes whose modules were loaded once, at boot.
BENCHMARKS=(
	"kmsg"
	"migrate"
	"auth"
)
# The same, on a cluster booted with `cohort up --transport shm`: transport
# compares kmsg over shared memory, kmsg over TCP (it reloads kmsg with
# cohort.shm=0 and back) and user-space TCP; then again with the
# shared-memory receivers polling 400 us after their last bytes
# (cohort.shm_poll_us; its ratios are named *_poll).
SHM_BENCHMARKS=(
	"transport"
	"transport --shm-poll-us 400"
)

cohort=$COHORT_ROOT/target/release/cohort
export COHORT_STATE=$COHORT_BUILD/cluster
out=$COHORT_BUILD/bench

"$COHORT_ROOT/scripts/build-all.sh"
cd "$COHORT_ROOT"
mkdir -p "$out"
# Logs are of this run only (a benchmark run twice appends to its log).
rm -f "$out"/*.log

# Runs `cohort bench NAME [ARGS]` for each argument "NAME [ARGS]" on the
# cluster up; a benchmark that could not run goes into failed.
failed=()
run_benchmarks() {
	local b name args start
	for b in "$@"; do
		read -r name args <<<"$b"
		log bench "cohort bench $b"
		start=$(date +%s)
		# shellcheck disable=SC2086 # ARGS are words
		if "$cohort" bench "$name" $args --out "$out/$name.jsonl" 2>&1 |
			tee -a "$out/$name.log"; then
			log bench "$name: done in $(($(date +%s) - start)) s"
		else
			failed+=("$name")
			# The nodes' last kernel messages, before the cluster goes.
			for n in 0 1; do
				echo "--- node $n: dmesg | tail -n 40"
				"$cohort" exec "$n" -- sh -c 'dmesg | tail -n 40' || true
			done >>"$out/$name.log" 2>&1
			log bench "$name: FAILED (see $out/$name.log)"
		fi
	done
}

"$cohort" down >/dev/null 2>&1 || true
trap '"$cohort" down >/dev/null 2>&1 || true' EXIT
# kmsg and popcorn on both nodes, in dependency order, and the mesh
# complete before any benchmark starts. 2 GiB each: migbench moves a
# process holding 1 GiB.
"$cohort" up -n 2 --mem 2048 --kernel "$COHORT_BUILD/images/bzImage" \
	--initrd "$COHORT_BUILD/images/initramfs.cpio.gz" --modules kmsg,gobelins,popcorn
run_benchmarks "${BENCHMARKS[@]}"
"$cohort" down >/dev/null 2>&1 || true

# The shared-memory cluster: the same modules, the default memory.
"$cohort" up -n 2 --transport shm --kernel "$COHORT_BUILD/images/bzImage" \
	--initrd "$COHORT_BUILD/images/initramfs.cpio.gz" --modules kmsg,gobelins,popcorn
run_benchmarks "${SHM_BENCHMARKS[@]}"

"$cohort" down >/dev/null 2>&1 || true
"$cohort" bench plot --dir "$out"
[ "${#failed[@]}" -eq 0 ] || die "benchmarks that could not run: ${failed[*]}"
log bench "results: $out/*.jsonl, plots: $out/*.svg"
