#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# transport: every connection runs over the transport the cluster was
# booted with (`cohort up --transport tcp|shm`, recorded in the state
# dir): debugfs `shm` shows transport=shm and joined=1 for every peer on a
# shared-memory cluster, transport=tcp (and no region) otherwise. Then:
# - two 64 MiB streams in opposite directions at once between node 0 and
#   node 1 (both rings, or both sockets, full both ways) arrive whole;
# - node LAST is killed while node 0 streams 1 GiB to it: the stream fails
#   and node 0 marks it down within 2 x heartbeat_timeout_ms (+ slack);
#   with 3 nodes, node 0 still sees node 1 up and pings it;
# - started again, it rejoins over the same transport (on shared memory
#   with a new incarnation in the region) within 30 s, and a stream both
#   ways and a 1 MiB echo work;
# - on shared memory, both transports in one cluster: node LAST's kmsg is
#   reloaded with cohort.shm=0; it is reached over TCP (debugfs shm on the
#   others: joined=0 transport=tcp) while the others keep shared memory
#   between themselves, and streams both ways work; reloaded with
#   cohort.shm=1, every connection is over shared memory again.
. "$(dirname "$0")/lib.sh"

SLACK_MS=1500
STREAM=$((64 << 20))
transport=$(sed -n 's/^transport \([a-z]*\)$/\1/p' "$COHORT_STATE/cluster")
[ -n "$transport" ] || transport=tcp
note "cluster booted with --transport $transport"

# check_transport NODE: every peer of NODE is up over $transport.
check_transport() {
	local out line n
	out=$(cx "$1" "cat $KD/shm") || fail "node $1: cannot read $KD/shm: $out"
	if [ "$transport" = tcp ]; then
		[ "$out" = none ] || fail "node $1: a region on a TCP cluster: $out"
		for n in $(seq 0 $LAST); do
			[ "$n" = "$1" ] && continue
			[ "$(field "$(peer_line "$1" "$n")" state)" = up ] ||
				fail "node $1 does not see node $n up"
		done
		return
	fi
	for n in $(seq 0 $LAST); do
		[ "$n" = "$1" ] && continue
		line=$(echo "$out" | awk -v p="$n" '$1 == p')
		echo "$line" | grep -q "joined=1" || fail "node $1: node $n not joined: '$line'"
		echo "$line" | grep -q "transport=shm" ||
			fail "node $1: its connection to node $n is not over shared memory: '$line'"
	done
}

for n in $(seq 0 $LAST); do check_transport "$n"; done
note "every connection is over $transport"
inc0=$(cx "$LAST" "cat $KD/shm" | sed -n 's/.*incarnation=\([0-9]*\).*/\1/p')

mark_all transport
# Every module on every node: restarting a node below waits for a whole
# mesh, `pcntl nodes` included (an earlier scenario may have left popcorn
# unloaded somewhere).
migrate_ready
# Both directions at once.
cx 0 "rm -f /tmp/st.out; (echo '1 $STREAM' >$KD/stream; echo rc=\$? >/tmp/st.out) </dev/null >/dev/null 2>&1 &" ||
	fail "node 0: cannot start its stream"
t0=$(now_ms)
r=$(cx 1 "echo '0 $STREAM' >$KD/stream && cat $KD/stream" 2>&1) ||
	fail "node 1 -> 0: a $STREAM-byte stream against one the other way failed: $r"
deadline=$(($(date +%s) + 120))
while ! out=$(cx 0 "cat /tmp/st.out 2>/dev/null") || [ -z "$out" ]; do
	[ "$(date +%s)" -lt "$deadline" ] || fail "node 0 -> 1: its stream did not end within 120 s"
	sleep 0.5
done
[ "$out" = rc=0 ] || fail "node 0 -> 1: a $STREAM-byte stream against one the other way failed: $out"
note "64 MiB each way at once in $(($(now_ms) - t0)) ms"

hb=$(param 0 heartbeat_timeout_ms)
bound_ms=$((2 * hb + SLACK_MS))
cx 0 "rm -f /tmp/st.out; (echo '$LAST $((1 << 30))' >$KD/stream; echo rc=\$? >/tmp/st.out) </dev/null >/dev/null 2>&1 &" ||
	fail "node 0: cannot start the stream to node $LAST"
sleep 2
t_kill=$(now_ms)
"$COHORT" kill "$LAST" >/dev/null || fail "cohort kill $LAST failed"
note "node $LAST killed in the middle of node 0's stream to it"
deadline=$((t_kill + bound_ms + 10000))
while :; do
	out=$(cx 0 "cat /tmp/st.out 2>/dev/null")
	[ -n "$out" ] && break
	[ "$(now_ms)" -lt "$deadline" ] || fail "node 0's stream to the killed node $LAST did not end"
	sleep 0.2
done
ended=$(($(now_ms) - t_kill))
[ "$out" != rc=0 ] || fail "node 0's stream to the killed node $LAST succeeded"
wait_state 0 "$LAST" down $(((bound_ms + 999) / 1000)) ||
	fail "node 0 does not mark node $LAST down within $bound_ms ms"
note "the stream failed ($out) and node 0 marked node $LAST down, ${ended} ms after the kill"
if [ "$NODES" -ge 3 ]; then
	[ "$(field "$(peer_line 0 1)" state)" = up ] || fail "node 0 lost node 1 while node $LAST died"
	r=$(kop 1 ping "0 10") || fail "node 1 -> 0: ping after node $LAST died failed: $r"
	note "node 0 and node 1 kept talking"
fi

bring_back "$LAST"
for n in $(seq 0 $LAST); do check_transport "$n"; done
if [ "$transport" = shm ]; then
	inc1=$(cx "$LAST" "cat $KD/shm" | sed -n 's/.*incarnation=\([0-9]*\).*/\1/p')
	[ -n "$inc1" ] && [ "$inc1" != "$inc0" ] ||
		fail "node $LAST rejoined the region without a new incarnation ($inc0 -> $inc1)"
	note "node $LAST rejoined the region: incarnation $inc0 -> $inc1"
fi
r=$(cx 0 "echo '$LAST $((8 << 20))' >$KD/stream && cat $KD/stream" 2>&1) ||
	fail "node 0 -> $LAST: stream after the rejoin failed: $r"
r=$(cx "$LAST" "echo '0 $((8 << 20))' >$KD/stream && cat $KD/stream" 2>&1) ||
	fail "node $LAST -> 0: stream after the rejoin failed: $r"
r=$(cx 0 "echo '$LAST $((1 << 20)) 3' >$KD/echo && cat $KD/echo" 2>&1) ||
	fail "node 0 -> $LAST: 1 MiB echo after the rejoin failed: $r"
note "after the rejoin: streams both ways and a 1 MiB echo work"

# reload_kmsg NODE SHM: kmsg (alone) on NODE again, with cohort.shm=SHM.
reload_kmsg() {
	local r
	r=$(cx "$1" "rmmod popcorn 2>/dev/null; rmmod gobelins 2>/dev/null
		rmmod kmsg && echo $2 >/sys/module/cohort/parameters/shm && insmod $KMSG_KO" 2>&1) ||
		fail "node $1: reloading kmsg with cohort.shm=$2: $r"
	wait_mesh 30 || fail "the mesh did not form within 30 s of reloading kmsg on node $1 (shm=$2)"
}

# shm_field NODE PEER KEY: KEY= from NODE's debugfs shm line of PEER.
shm_field() {
	cx "$1" "cat $KD/shm" | awk -v p="$2" '$1 == p' | tr ' ' '\n' | sed -n "s/^$3=//p"
}

if [ "$transport" = shm ]; then
	# ---- both transports in one cluster ----
	reload_kmsg "$LAST" 0
	r=$(cx "$LAST" "cat $KD/shm")
	[ "$r" = none ] || fail "node $LAST reloaded with cohort.shm=0 still shows a region: $r"
	for n in $(seq 0 $((LAST - 1))); do
		[ "$(shm_field "$n" "$LAST" joined)" = 0 ] ||
			fail "node $n still sees node $LAST joined to the region"
		[ "$(shm_field "$n" "$LAST" transport)" = tcp ] ||
			fail "node $n does not reach node $LAST over TCP: $(cx "$n" "cat $KD/shm")"
		for m in $(seq 0 $((LAST - 1))); do
			[ "$m" = "$n" ] && continue
			[ "$(shm_field "$n" "$m" transport)" = shm ] ||
				fail "node $n no longer reaches node $m over shared memory"
		done
	done
	r=$(cx 0 "echo '$LAST $((8 << 20))' >$KD/stream && cat $KD/stream" 2>&1) ||
		fail "node 0 -> $LAST over TCP in a shared-memory cluster: stream failed: $r"
	r=$(cx "$LAST" "echo '0 $((8 << 20))' >$KD/stream && cat $KD/stream" 2>&1) ||
		fail "node $LAST -> 0 over TCP in a shared-memory cluster: stream failed: $r"
	note "node $LAST without the region (cohort.shm=0) is reached over TCP, the others over shared memory; streams both ways work"
	reload_kmsg "$LAST" 1
	for n in $(seq 0 $LAST); do check_transport "$n"; done
	note "node $LAST with cohort.shm=1 again: every connection is over shared memory"
	migrate_ready
fi
check_dmesg transport
