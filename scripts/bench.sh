#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make bench`: build everything, boot a 2-node cluster, load kmsg and
# popcorn on both nodes, run each benchmark below, tear the cluster down,
# then draw the history of every benchmark.
#
# Each run of a benchmark appends one JSON record to build/bench/NAME.jsonl
# (its console output goes to build/bench/NAME.log) and the plot of all
# the runs so far is build/bench/NAME.svg. Exits 1 if a benchmark could not
# run; a missed target is in the record and the output, not a failure.
. "$(dirname "$0")/lib.sh"

# The benchmarks, in order: NAME [ARGS] for `cohort bench NAME [ARGS]`.
# A new benchmark is one more line.
BENCHMARKS=(
	"kmsg"
	"migrate"
)

cohort=$COHORT_ROOT/target/release/cohort
export COHORT_STATE=$COHORT_BUILD/cluster
out=$COHORT_BUILD/bench

"$COHORT_ROOT/scripts/build-all.sh"
cd "$COHORT_ROOT"
mkdir -p "$out"

"$cohort" down >/dev/null 2>&1 || true
trap '"$cohort" down >/dev/null 2>&1 || true' EXIT
# kmsg and popcorn on both nodes, in dependency order, and the mesh
# complete before any benchmark starts. 2 GiB each: migbench moves a
# process holding 1 GiB.
"$cohort" up -n 2 --mem 2048 --kernel "$COHORT_BUILD/images/bzImage" \
	--initrd "$COHORT_BUILD/images/initramfs.cpio.gz" --modules kmsg,gobelins,popcorn

failed=()
for b in "${BENCHMARKS[@]}"; do
	read -r name args <<<"$b"
	log bench "cohort bench $b"
	start=$(date +%s)
	# shellcheck disable=SC2086 # ARGS are words
	if "$cohort" bench "$name" $args --out "$out/$name.jsonl" 2>&1 |
		tee "$out/$name.log"; then
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

"$cohort" down >/dev/null 2>&1 || true
"$cohort" bench plot --dir "$out"
[ "${#failed[@]}" -eq 0 ] || die "benchmarks that could not run: ${failed[*]}"
log bench "results: $out/*.jsonl, plots: $out/*.svg"
