#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: boot a 2-node cluster and show both nodes up and seeing each
# other. Set KEEP=1 to leave the cluster running (stop it with
# `target/release/cohort down`).
. "$(dirname "$0")/lib.sh"

cohort=$COHORT_ROOT/target/release/cohort
export COHORT_STATE=$COHORT_BUILD/cluster

"$COHORT_ROOT/scripts/build-all.sh"
"$cohort" down >/dev/null 2>&1 || true
[ "${KEEP:-0}" = 1 ] || trap '"$cohort" down >/dev/null' EXIT
"$cohort" up -n 2

for n in 0 1; do
	"$cohort" exec "$n" -- sh -c 'echo "node $(cat /sys/kernel/cohort/node_id) of $(cat /sys/kernel/cohort/nr_nodes): $(uname -r), $(ip -4 -o addr show eth0 | awk "{print \$4}")"'
done

# Each node answers with its id on the cluster network; each asks the other.
# (User space for now: kmsg's in-kernel transport replaces this.)
for n in 0 1; do
	"$cohort" exec "$n" -- sh -c 'nc -l -p 7000 -e cat /sys/kernel/cohort/node_id >/dev/null 2>&1 &'
done
for n in 0 1; do
	peer=169.254.42.$((2 - n))
	"$cohort" exec "$n" -- sh -c "echo \"node \$(cat /sys/kernel/cohort/node_id) sees node \$(nc -w 5 $peer 7000 </dev/null) at $peer\""
done
