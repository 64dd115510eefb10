#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: boot a 2-node cluster and show both nodes up, connected by
# kmsg and seeing each other's id. Set KEEP=1 to leave the cluster running
# (stop it with `target/release/cohort down`).
. "$(dirname "$0")/lib.sh"

cohort=$COHORT_ROOT/target/release/cohort
export COHORT_STATE=$COHORT_BUILD/cluster

"$COHORT_ROOT/scripts/build-all.sh"
"$cohort" down >/dev/null 2>&1 || true
[ "${KEEP:-0}" = 1 ] || trap '"$cohort" down >/dev/null' EXIT
"$cohort" up -n 2 --kernel "$COHORT_BUILD/images/bzImage" \
	--initrd "$COHORT_BUILD/images/initramfs.cpio.gz"

for n in 0 1; do
	"$cohort" exec "$n" -- sh -c 'echo "node $(cat /sys/kernel/cohort/node_id) of $(cat /sys/kernel/cohort/nr_nodes): $(uname -r), $(ip -4 -o addr show eth0 | awk "{print \$4}")"'
done

log demo "loading kmsg on both nodes"
for n in 0 1; do
	"$cohort" exec "$n" -- insmod /lib/modules/cohort/kmsg.ko
done
for n in 0 1; do
	peer=$((1 - n))
	# The mesh forms within a few heartbeats; wait at most 20 s.
	"$cohort" exec "$n" -- sh -c "
		i=0
		while ! grep -q '^$peer up ' /sys/kernel/debug/kmsg/peers; do
			i=\$((i + 1)); [ \$i -le 40 ] || { echo 'node $peer not up after 20 s'; exit 1; }
			sleep 0.5
		done
		echo '$peer 10' >/sys/kernel/debug/kmsg/ping
		echo \"node \$(cat /sys/kernel/cohort/node_id) sees node $peer up over kmsg: \$(cat /sys/kernel/debug/kmsg/ping)\""
done
