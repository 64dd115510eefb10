#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# balance: 4 CPU-bound processes (shell loops) started on node 0 end 2 on
# node 0 and 2 on node 1 once `pcntl balance -i 2 -r 2 -n 10` has run on
# node 0 (up to 3 runs); `pcntl where`, `pcntl ps` and `cohort ps` (from
# the host) agree, and a further run moves nothing (a balanced cluster
# stays put). Nodes 2 and up refuse processes meanwhile
# (/sys/kernel/cohort/accept = 0), so that the only destination is node 1
# whatever the cluster's size; they accept again after, and the loops are
# killed.
. "$(dirname "$0")/lib.sh"

NSPIN=4
[ "$NODES" -ge 2 ] || fail "needs 2 nodes, the cluster has $NODES"

mark_all balance
migrate_ready

balance_setup $NSPIN
note "$NSPIN loops on node 0: $pids"

# placement: "N0 N1" how many of the loops run on node 0 and on node 1;
# otherwise what is wrong, and status 1.
placement() {
	local p w on0=0 on1=0
	for p in $pids; do
		w=$(cx 0 "pcntl where $p" 2>&1) || { echo "pcntl where $p: $w"; return 1; }
		case $w in
		0) on0=$((on0 + 1)) ;;
		1) on1=$((on1 + 1)) ;;
		*) echo "loop $p runs on node '$w', not 0 or 1"; return 1 ;;
		esac
	done
	echo "$on0 $on1"
}

at=$(placement) || fail "$at"
[ "$at" = "$NSPIN 0" ] || fail "before balancing, the loops run ${at% *} on node 0 and ${at#* } on node 1"

balanced=0
for run in 1 2 3; do
	out=$(CX_TIMEOUT=240 cx 0 "pcntl balance -i 2 -r 2 -n 10 -v" 2>&1) ||
		fail "pcntl balance (run $run) failed: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	echo "$out" | grep -v ': round ' | sed 's/^/# /'
	echo "$out" | grep ': round ' | tail -n 1 | sed 's/^/# /'
	at=$(placement) || fail "$at"
	note "after run $run: ${at% *} on node 0, ${at#* } on node 1"
	if [ "$at" = "$((NSPIN / 2)) $((NSPIN / 2))" ]; then
		balanced=1
		break
	fi
done
[ "$balanced" = 1 ] || fail "after 3 runs of pcntl balance the loops run ${at% *} on node 0 and ${at#* } on node 1, expected $((NSPIN / 2)) and $((NSPIN / 2))"

# `pcntl ps` lists the moved ones on node 1, by their cluster-wide pid.
ps=$(cx 0 "pcntl ps" 2>&1) || fail "pcntl ps: $ps"
echo "$ps" | sed 's/^/# /'
moved=0
for p in $pids; do
	line=$(echo "$ps" | awk -v g="0:$p" '$1 == g')
	[ -n "$line" ] || continue
	node=$(echo "$line" | awk '{ print $3 }')
	[ "$node" = 1 ] || fail "pcntl ps shows 0:$p on node $node: $line"
	moved=$((moved + 1))
done
[ "$moved" = $((NSPIN / 2)) ] || fail "pcntl ps lists $moved of the loops as distributed, expected $((NSPIN / 2))"
psa=$(cx 0 "pcntl ps -a" 2>&1) || fail "pcntl ps -a: $psa"
# The same view from the host.
hps=$("$COHORT" ps 2>&1) || fail "cohort ps: $hps"
for p in $pids; do
	line=$(echo "$hps" | awk -v g="0:$p" '$1 == g')
	[ -z "$line" ] || [ "$(echo "$line" | awk '{ print $3 }')" = 1 ] ||
		fail "cohort ps shows 0:$p elsewhere than node 1: $line"
done
[ "$(echo "$hps" | awk '$1 ~ /^0:/ && $3 == 1' | wc -l)" -ge $((NSPIN / 2)) ] ||
	fail "cohort ps lists fewer than $((NSPIN / 2)) processes of node 0 on node 1: $hps"
for p in $pids; do
	[ "$(echo "$psa" | awk -v g="0:$p" '$1 == g' | wc -l)" = 1 ] ||
		fail "pcntl ps -a does not list 0:$p exactly once"
done

# Balanced, it stays so.
out=$(CX_TIMEOUT=120 cx 0 "pcntl balance -i 2 -r 2 -n 3" 2>&1) ||
	fail "pcntl balance on a balanced cluster failed: $out"
[ -z "$(echo "$out" | grep 'moved')" ] || fail "pcntl balance moved a loop of a balanced cluster: $out"
at=$(placement) || fail "$at"
[ "$at" = "$((NSPIN / 2)) $((NSPIN / 2))" ] || fail "the loops moved to ${at% *} and ${at#* } by themselves"

balance_end
check_dmesg balance
