#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# peer-death: while pings to the last node are in flight (2 from node 0,
# and 2 from node 1 when there are 3 nodes or more), its QEMU is killed.
# Every pending ping must fail within 2 x heartbeat_timeout_ms of the
# death (+500 ms slack for TCG), the survivors must mark it down, a new
# ping to it must then fail with EHOSTDOWN in under 500 ms (kmsg_test's
# ping_down_peer_fails_at_once on each survivor), and once it is started
# again and loads kmsg it must rejoin within 30 s.
. "$(dirname "$0")/lib.sh"

SLACK_MS=500
victim=$LAST
senders=0
[ "$NODES" -ge 3 ] && senders="0 1"
survivors=$(seq 0 $((LAST - 1)))

hb=$(param 0 heartbeat_timeout_ms)
[ -n "$hb" ] || fail "node 0: no heartbeat_timeout_ms in $KD/params"
bound_ms=$((2 * hb))
note "heartbeat_timeout_ms=$hb: pending requests must fail within $bound_ms ms (+$SLACK_MS ms slack for TCG)"

mark_all peer-death
for s in $senders; do
	cx "$s" "rm -f /tmp/pd.*; for i in 1 2; do
		(echo '$victim 100000000' >$KD/ping; echo rc=\$?; cat $KD/ping; echo done) \
			>/tmp/pd.\$i 2>&1 </dev/null &
	done" || fail "node $s: cannot start the background pings"
done
sleep 2
for s in $senders; do
	out=$(cx "$s" "cat /tmp/pd.*")
	[ -z "$out" ] || fail "node $s: a ping to node $victim ended before the kill: $out"
done
tx0=$(field "$(peer_line 0 "$victim")" tx_msgs)
sleep 1
tx1=$(field "$(peer_line 0 "$victim")" tx_msgs)
note "node 0 -> $victim tx_msgs $tx0 -> $tx1 in the second before the kill"
[ -n "$tx1" ] && [ "$tx1" -gt "${tx0:-0}" ] || fail "the pings are not progressing (tx_msgs $tx0 -> $tx1)"

t_kill=$(now_ms)
"$COHORT" kill "$victim" >/dev/null || fail "cohort kill $victim failed"
note "node $victim killed"

# Wait for every writer to report, polling from the host.
deadline=$((t_kill + bound_ms + SLACK_MS + 20000))
for s in $senders; do
	while :; do
		n=$(cx "$s" "cat /tmp/pd.* | grep -c '^done'")
		[ "$n" = 2 ] && break
		[ "$(now_ms)" -ge "$deadline" ] &&
			fail "node $s: only ${n:-0} of 2 pending pings returned $(( ($(now_ms) - t_kill) / 1000 )) s after the kill"
		sleep 0.2
	done
done
t_done=$(now_ms)
note "all pending pings returned; host saw it $((t_done - t_kill)) ms after the kill (includes polling through the agent)"

for s in $senders; do
	for i in 1 2; do
		out=$(cx "$s" "cat /tmp/pd.$i")
		flat=$(echo "$out" | tr '\n' ' ')
		rc=$(kv "$out" rc)
		err=$(kv "$out" error)
		stalled=$(kv "$out" stalled_ns)
		[ -n "$rc" ] && [ "$rc" != 0 ] || fail "node $s ping $i: the write did not fail: $flat"
		[ -n "$err" ] && [ -n "$stalled" ] || fail "node $s ping $i: no error= result: $flat"
		[ "$stalled" -le $(( (bound_ms + SLACK_MS) * 1000000 )) ] ||
			fail "node $s ping $i: failed after stalled_ns=$stalled > $((bound_ms + SLACK_MS)) ms: $flat"
		note "node $s ping $i: error=$err after stalled_ns=$stalled ($flat)"
	done
done

for s in $survivors; do
	wait_state "$s" "$victim" down 1 || fail "node $s does not show node $victim down"
done
note "survivors show node $victim down"

# A request to a peer known to be down fails at once: kmsg_test's check,
# which under the runner (every peer up) has no down peer to try.
for s in $survivors; do
	out=$(cx "$s" "/usr/lib/cohort/selftests/kmsg_test -t ping_down_peer_fails_at_once 2>&1")
	echo "$out" | grep -E '^# kmsg_test\.c:|^#  |^(not )?ok ' | sed "s/^/# node $s: /"
	echo "$out" | grep -qE '^ok [0-9]+ kmsg\.ping_down_peer_fails_at_once$' ||
		fail "node $s: a ping to down node $victim did not fail with EHOSTDOWN at once (above)"
done

"$COHORT" start "$victim" >/dev/null || fail "cohort start $victim failed"
kmsg_load "$victim"
t0=$(now_ms)
wait_mesh 30 || fail "node $victim did not rejoin within 30 s"
note "node $victim rejoined $(($(now_ms) - t0)) ms after loading kmsg"
for s in $survivors; do
	ups=$(field "$(peer_line "$s" "$victim")" ups)
	[ "${ups:-0}" -ge 2 ] || fail "node $s: ups=$ups for node $victim after the rejoin (expected >= 2)"
done
r=$(kop 0 ping "$victim 10") || fail "node 0 -> $victim: ping after the rejoin failed: $r"
r=$(kop "$victim" ping "0 10") || fail "node $victim -> 0: ping after the rejoin failed: $r"
check_dmesg peer-death
