#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# rmmod-under-traffic: while node 0 streams to node 1, rmmod kmsg on node 1
# then on node 0. Each rmmod completes within 10 s, the stream fails, no
# node oopses or warns, and after reloading kmsg the mesh forms again.
. "$(dirname "$0")/lib.sh"

LIMIT_S=10
mark_all rmmod
cx 0 "rm -f /tmp/rt.out; (echo '1 68719476736' >$KD/stream; echo rc=\$?; cat $KD/stream; echo done) \
	>/tmp/rt.out 2>&1 </dev/null &" || fail "node 0: cannot start the background stream"
sleep 2
out=$(cx 0 "cat /tmp/rt.out")
[ -z "$out" ] || fail "node 0: the stream ended before rmmod: $(echo "$out" | tr '\n' ' ')"

# rmmod is retried while it says the module is busy (the node-0 writer
# holds kmsg's debugfs file open until its stream fails); it must have
# succeeded within LIMIT_S of the first try, timed inside the node.
for n in 1 0; do
	out=$(CX_TIMEOUT=60 cx "$n" "a=\$(cut -d' ' -f1 /proc/uptime); i=0; ms=0
		while :; do
			i=\$((i + 1))
			timeout $((LIMIT_S + 5)) rmmod kmsg 2>/tmp/rmmod.err && r=0 || r=\$?
			b=\$(cut -d' ' -f1 /proc/uptime)
			ms=\$(awk \"BEGIN { print int((\$b - \$a) * 1000) }\")
			[ \$r -eq 0 ] && break
			[ \$ms -ge $((LIMIT_S * 1000)) ] && break
			sleep 0.2
		done
		echo rc=\$r ms=\$ms tries=\$i err=\$(tr ' ' _ </tmp/rmmod.err)" 2>&1)
	st=$?
	[ "$st" -eq 0 ] || fail "node $n: rmmod did not return (cohort exec status $st): $out"
	[ "$(kv "$out" rc)" = 0 ] || fail "node $n: rmmod kmsg did not succeed within $LIMIT_S s: $out"
	note "node $n: rmmod kmsg under traffic: $out"
	cx "$n" "! grep -q '^kmsg ' /proc/modules" || fail "node $n: kmsg still listed in /proc/modules"
done

deadline=$(($(date +%s) + 20))
while :; do
	out=$(cx 0 "cat /tmp/rt.out")
	echo "$out" | grep -q '^done' && break
	[ "$(date +%s)" -ge "$deadline" ] && fail "node 0: the stream write has not returned 20 s after rmmod"
	sleep 0.5
done
flat=$(echo "$out" | tr '\n' ' ')
[ "$(kv "$out" rc)" != 0 ] || fail "node 0: the interrupted stream reported success: $flat"
note "node 0: the stream ended with: $flat"

for n in $(seq 0 $LAST); do
	cx "$n" "true" || fail "node $n: does not answer after the rmmods"
done
check_dmesg rmmod
kmsg_load 1
kmsg_load 0
wait_mesh 30 || fail "mesh not formed again within 30 s of reloading kmsg"
r=$(kop 0 ping "1 10") || fail "node 0 -> 1: ping after the reload failed: $r"
