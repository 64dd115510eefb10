#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: boot a 2-node cluster with kmsg and popcorn loaded
# (`cohort up --modules`), show both nodes up and connected by kmsg, then
# start a counting program on node 0, migrate it to node 1 and
# back with pcntl(2), and show that its output carried on without a gap.
# Set KEEP=1 to leave the cluster running (stop it with
# `target/release/cohort down`).
. "$(dirname "$0")/lib.sh"

cohort=$COHORT_ROOT/target/release/cohort
export COHORT_STATE=$COHORT_BUILD/cluster

"$COHORT_ROOT/scripts/build-all.sh"
"$cohort" down >/dev/null 2>&1 || true
[ "${KEEP:-0}" = 1 ] || trap '"$cohort" down >/dev/null' EXIT
"$cohort" up -n 2 --kernel "$COHORT_BUILD/images/bzImage" \
	--initrd "$COHORT_BUILD/images/initramfs.cpio.gz" --modules kmsg,gobelins,popcorn

for n in 0 1; do
	"$cohort" exec "$n" -- sh -c 'echo "node $(cat /sys/kernel/cohort/node_id) of $(cat /sys/kernel/cohort/nr_nodes): $(uname -r), $(ip -4 -o addr show eth0 | awk "{print \$4}")"'
done

# `up --modules` loaded kmsg and popcorn and waited until each node sees
# the other up; ping over kmsg to show it.
for n in 0 1; do
	peer=$((1 - n))
	"$cohort" exec "$n" -- sh -c "
		echo '$peer 10' >/sys/kernel/debug/kmsg/ping
		echo \"node \$(cat /sys/kernel/cohort/node_id) sees node $peer up over kmsg: \$(cat /sys/kernel/debug/kmsg/ping)\""
done

log demo "starting 'count 40 150' on node 0, then migrating it 0 -> 1 -> 0"
"$cohort" exec 0 --timeout 120 -- sh -c '
	count 40 150 >/tmp/count.out 2>&1 &
	pid=$!
	sleep 1.5
	echo "pcntl where $pid: node $(pcntl where $pid)"
	pcntl migrate $pid 1 || exit 1
	echo "pcntl migrate $pid 1 -> runs on node $(pcntl where $pid)"
	sleep 2
	pcntl migrate $pid 0 || exit 1
	echo "pcntl migrate $pid 0 -> runs on node $(pcntl where $pid)"
	wait $pid
	echo "count exited with status $?; its output (printed on node 0 throughout):"
	cat /tmp/count.out
	# Every number from 1 to 40 once, in order, and some printed on node 1.
	seq 1 40 >/tmp/want
	cut -d" " -f1 /tmp/count.out >/tmp/got
	cmp -s /tmp/want /tmp/got || { echo "FAIL: the count has a gap"; exit 1; }
	grep -q "node 1$" /tmp/count.out || { echo "FAIL: nothing ran on node 1"; exit 1; }
	echo "OK: 1..40 without a gap, $(grep -c "node 1$" /tmp/count.out) lines printed while on node 1"
'
