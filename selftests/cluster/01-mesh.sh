#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# mesh: unload kmsg everywhere, load it again in a shuffled order; within
# 20 s every node shows every other node up, with the right params.
. "$(dirname "$0")/lib.sh"

mark_all mesh
for n in $(seq 0 $LAST); do
	cx "$n" "if grep -q '^kmsg ' /proc/modules; then rmmod kmsg; fi" ||
		fail "node $n: rmmod kmsg failed"
done
order=$(seq 0 $LAST | shuf | tr '\n' ' ')
note "loading kmsg in the order $order"
t0=$(now_ms)
for n in $order; do
	cx "$n" "insmod $KMSG_KO" || fail "node $n: insmod $KMSG_KO failed"
done
for n in $(seq 0 $LAST); do
	p=$(cx "$n" "cat $KD/params" 2>&1)
	echo "$p" | grep -q "node=$n nr_nodes=$NODES " ||
		fail "node $n: params '$p' (expected node=$n nr_nodes=$NODES)"
done
wait_mesh 20 || fail "no full mesh 20 s after loading kmsg"
note "full mesh $(($(now_ms) - t0)) ms after the first insmod"
check_dmesg mesh
