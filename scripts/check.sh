#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make check`: lints and host tests, then three cluster rounds:
#
#   1. 3 nodes with 2 vCPUs each, on the Cohort kernel, over TCP;
#   2. 2 nodes with 2 vCPUs each, on the Cohort kernel, over shared memory
#      (`cohort up --transport shm`: kmsg between them uses the rings of an
#      ivshmem-doorbell region, Documentation/shm-transport.rst);
#   3. 2 nodes with 1 vCPU each, on the debug kernel (config/debug.config:
#      lockdep, atomic-sleep checks, kmemleak, debug objects).
#
# A round boots the cluster, runs the selftests with the other nodes'
# modules loaded (`cohort test --peer-modules`), then cluster scenarios
# (selftests/cluster/run), then checks every node's kernel log and
# kmemleak at teardown. Every result is a record in build/results.tsv;
# `cohort report` merges them by test name and ends with `N passed, N
# failed, N skipped` over distinct tests.
#
# What each round runs, to keep a cold run (two kernel builds) well under
# CI's 90 minutes on 2 cores:
#
#   3 nodes   the selftests from every node, every scenario;
#   shm       the selftests from node 0 (node 1 serves every request they
#             make, over the rings), the kmsg scenarios and those that
#             move processes and pages over the transport ($SHM_SCENARIOS);
#   debug     the selftests from node 0 (node 1, serving, runs the same
#             debug kernel), every scenario but those that only add
#             running time to code the others run ($DEBUG_SKIP).
#
# ROUNDS="3 shm 2" picks rounds (e.g. ROUNDS=3 for a quick run).
. "$(dirname "$0")/lib.sh"

cohort=$COHORT_ROOT/target/release/cohort
export COHORT_STATE=$COHORT_BUILD/cluster
export COHORT_RESULTS=$COHORT_BUILD/results.tsv
ROUNDS=${ROUNDS:-3 shm 2}
SHM_SCENARIOS=${SHM_SCENARIOS:-mesh ping-all echo-1mib requests-10k inject peer-death \
rmmod-under-traffic membership migrate-demo migrate-running-node-dies containers \
containers-rejoin shared-node-dies wrong-key transport}
# The configuration-file boots (their kernel paths are every boot's), the
# 64 MiB streams of `transport` and the balancer's policy (user space).
DEBUG_SKIP=${DEBUG_SKIP:-config config-ipv6 transport balance balance-rules}

# scenarios_but SKIP...: every scenario's name but those listed.
scenarios_but() {
	local s name
	for s in "$COHORT_ROOT"/selftests/cluster/[0-9][0-9]-*.sh; do
		name=$(basename "$s" .sh)
		name=${name#[0-9][0-9]-}
		case " $* " in *" $name "*) ;; *) echo "$name" ;; esac
	done
}

# A name in the lists above that names no scenario would drop tests unseen.
for w in $SHM_SCENARIOS $DEBUG_SKIP; do
	[ -n "$(scenarios_but | grep -x -- "$w")" ] ||
		die "no cluster scenario named '$w' (SHM_SCENARIOS, DEBUG_SKIP)"
done

"$COHORT_ROOT/scripts/build-all.sh"
cd "$COHORT_ROOT"
mkdir -p "$COHORT_BUILD"
: >"$COHORT_RESULTS"

# record STATUS TEST DETAIL [PLACE]: one result (see `cohort record`).
record() {
	"$cohort" record --place "${4:-host}" -- "$1" "$2" "$3"
}

# step NAME CMD...: one result NAME for a whole command, the end of its
# output as the detail when it fails.
step() {
	local name=$1 out rc=0
	shift
	log check "$name"
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		record pass "$name" ""
	else
		echo "$out" | tail -n 40 >&2
		record fail "$name" "$(echo "$out" | tail -n 40)"
	fi
}

# lint NAME CMD...: one result for a whole lint.
lint() {
	local name=$1
	shift
	step "lint: $name" "$@"
}

lint "rustfmt (host crates)" cargo fmt --all --check
lint "clippy (host crates)" cargo clippy --quiet --workspace --all-targets -- -D warnings

# The kernel side: checkpatch on each patch and kernel file, rustfmt with
# the kernel's config; each `ok NAME`/`not ok NAME` line is a result of its
# own, with the indented lines under a failure as its detail.
log check "lint: kernel side (scripts/lint-kernel.sh)"
rc=0
"$COHORT_ROOT/scripts/lint-kernel.sh" >"$COHORT_BUILD/lint-kernel.log" 2>&1 || rc=$?
awk '
	function flush() { if (name != "") printf "%s\tlint: %s\thost\t%s\n", st, name, detail; name = "" }
	/^ok / { flush(); st = "pass"; name = substr($0, 4); detail = ""; next }
	/^not ok / { flush(); st = "fail"; name = substr($0, 8); detail = ""; next }
	/^[ \t]/ && name != "" { gsub(/\\/, "\\\\\\\\"); gsub(/\t/, " "); detail = detail (detail == "" ? "" : "\\n") $0; next }
	{ flush() }
	END { flush() }' "$COHORT_BUILD/lint-kernel.log" >>"$COHORT_RESULTS"
if [ "$rc" -ne 0 ] && ! grep -q '^fail	lint: ' "$COHORT_RESULTS"; then
	record fail "lint: kernel side" "scripts/lint-kernel.sh exited $rc: $(tail -n 20 "$COHORT_BUILD/lint-kernel.log")"
fi

# Host tests: every cargo test is a result of its own, named by crate.
log check "host tests (cargo test --workspace --release)"
rc=0
cargo test --workspace --release 2>&1 | tee "$COHORT_BUILD/host-tests.log" || rc=$?
awk -F'\t' '
	/^ *Running / {
		crate = $0; sub(/.*\(/, "", crate); sub(/\).*/, "", crate)
		sub(/.*\//, "", crate); sub(/-[0-9a-f]+$/, "", crate)
	}
	/^ *Doc-tests / { crate = $0; sub(/^ *Doc-tests /, "", crate); crate = crate " (doc)" }
	/^test .* \.\.\. (ok|FAILED|ignored)/ {
		name = $0; sub(/^test /, "", name); st = name
		sub(/ \.\.\. .*/, "", name); sub(/.* \.\.\. /, "", st)
		s = st == "ok" ? "pass" : st == "FAILED" ? "fail" : "skip"
		printf "%s\thost: %s: %s\thost\t%s\n", s, crate, name, s == "skip" ? "#[ignore]" : ""
	}' "$COHORT_BUILD/host-tests.log" >>"$COHORT_RESULTS"
if [ "$rc" -ne 0 ] && ! grep -q '^fail	host: ' "$COHORT_RESULTS"; then
	record fail "host: cargo test" "cargo test exited $rc without a failing test (a build error?); see $COHORT_BUILD/host-tests.log"
fi

# make deb: the packages are built from the cached kernel tree (a relink)
# and hold what a real node needs; the configuration tool in the package
# accepts the example it ships. One result.
deb_check() {
	local out=$COHORT_BUILD/deb krel pkg x
	"$COHORT_ROOT/scripts/deb.sh" || { echo "scripts/deb.sh failed"; return 1; }
	krel=$(cat "$COHORT_BUILD/images/release") || return 1
	for pkg in linux-image-"$krel" linux-headers-"$krel" linux-libc-dev cohort-node; do
		ls "$out/${pkg}"_*.deb >/dev/null 2>&1 || { echo "no $pkg package in $out"; return 1; }
	done
	# (The listing first: grep -q would end dpkg-deb with SIGPIPE.)
	x=$(dpkg-deb -c "$out"/linux-image-"$krel"_*.deb) || return 1
	echo "$x" | grep -q "/boot/vmlinuz-$krel\$" ||
		{ echo "linux-image-$krel has no /boot/vmlinuz-$krel"; return 1; }
	pkg=$(ls "$out"/cohort-node_*.deb)
	dpkg-deb -f "$pkg" Depends | grep -q "linux-image-$krel" ||
		{ echo "cohort-node does not depend on linux-image-$krel"; return 1; }
	x=$(mktemp -d)
	dpkg-deb -x "$pkg" "$x"
	for f in lib/modules/"$krel"/updates/cohort/{kmsg,gobelins,popcorn}.ko usr/sbin/cohort-node \
		lib/systemd/system/cohort.service usr/bin/pcntl usr/lib/x86_64-linux-gnu/libpcntl.a \
		usr/include/libpcntl.h usr/share/doc/cohort-node/cohort.conf.example; do
		[ -s "$x/$f" ] || { echo "cohort-node has no $f"; rm -rf "$x"; return 1; }
	done
	modinfo -F vermagic "$x/lib/modules/$krel/updates/cohort/kmsg.ko" | grep -q "^$krel " ||
		{ echo "kmsg.ko in cohort-node is not built for $krel"; rm -rf "$x"; return 1; }
	"$x/usr/sbin/cohort-node" check "$x/usr/share/doc/cohort-node/cohort.conf.example" ||
		{ echo "cohort-node check refuses the example it ships"; rm -rf "$x"; return 1; }
	rm -rf "$x"
}
step "host: make deb: packages" deb_check

"$cohort" down >/dev/null 2>&1 || true
trap '"$cohort" down >/dev/null 2>&1 || true' EXIT

# cluster_round NAME N SMP KERNEL-NAME IMAGES TRANSPORT TESTED SCENARIOS:
# boot N nodes with SMP vCPUs from IMAGES (bzImage, initramfs.cpio.gz)
# with kmsg and popcorn loaded, talking over TRANSPORT (tcp or shm), run
# the selftests of the nodes TESTED (`all`, or a list such as 0) and the
# SCENARIOS (names), check the logs at teardown, tear down. Output goes
# to build/round-NAME.log as well.
cluster_round() {
	local name=$1 n=$2 smp=$3 kname=$4 images=$5 transport=$6 tested=$7
	local scenarios=$8 nodes=()
	local rlog=$COHORT_BUILD/round-$name.log t0=$SECONDS
	export COHORT_ROUND="$n nodes ($kname kernel, $smp vCPU, $transport)"
	log check "round: $COHORT_ROUND"
	"$cohort" down >/dev/null 2>&1 || true
	if ! "$cohort" up -n "$n" --smp "$smp" --kernel "$images/bzImage" \
		--initrd "$images/initramfs.cpio.gz" --transport "$transport" \
		--modules kmsg,gobelins,popcorn 2>&1 | tee "$rlog"; then
		record fail "cluster: boot" "$n nodes did not come up: $(tail -n 20 "$rlog")" "$COHORT_ROUND"
		"$cohort" down >/dev/null 2>&1 || true
		return
	fi
	record pass "cluster: boot" "" "$COHORT_ROUND"
	[ "$tested" = all ] || nodes=(--nodes "$tested")
	"$cohort" test "${nodes[@]}" --peer-modules kmsg,gobelins,popcorn 2>&1 |
		tee -a "$rlog" || true
	# shellcheck disable=SC2086 # a list of names
	"$COHORT_ROOT/selftests/cluster/run" $scenarios 2>&1 | tee -a "$rlog" || true
	log check "kernel logs and kmemleak of every node at teardown"
	"$cohort" logscan --kmemleak --test "kernel log: every node at teardown" 2>&1 |
		tee -a "$rlog" || true
	"$cohort" down >/dev/null 2>&1 || true
	log check "round: $COHORT_ROUND done in $((SECONDS - t0)) s"
}

for r in $ROUNDS; do
	case "$r" in
	3)
		kname=Cohort
		[ "${COHORT_DEBUG:-0}" = 1 ] && kname=debug
		cluster_round 3 3 2 "$kname" "$COHORT_BUILD/images" tcp all "$(scenarios_but)"
		;;
	shm)
		kname=Cohort
		[ "${COHORT_DEBUG:-0}" = 1 ] && kname=debug
		cluster_round shm 2 2 "$kname" "$COHORT_BUILD/images" shm 0 "$SHM_SCENARIOS"
		;;
	2)
		log check "building the debug kernel, its modules and initramfs"
		COHORT_DEBUG=1 "$COHORT_ROOT/scripts/build-all.sh"
		# shellcheck disable=SC2086 # a list of names
		cluster_round 2 2 1 debug "$COHORT_DEBUG_BUILD/images" tcp 0 \
			"$(scenarios_but $DEBUG_SKIP)"
		;;
	*) die "ROUNDS: unknown round '$r' (3, shm or 2)" ;;
	esac
done

log check "all results (build/results.tsv), merged by test"
"$cohort" report "$COHORT_RESULTS" | tee "$COHORT_BUILD/report.tap"
