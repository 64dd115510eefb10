#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# containers-rejoin: the container layer of a node that starts again
# serves its containers and takes its peers' pages, and the pages of an
# earlier incarnation are not confused with the new one's.
#
# 1. gobelins is unloaded and loaded again on node 0 (a new incarnation
#    of node 0's container layer while the others stay synced): a page of
#    a process started on node 0 afterwards (a container homed at the new
#    incarnation) is read on the other nodes, written on the last, and
#    read back everywhere (pageshare, as in `containers`).
# 2. The last node is killed and started again (gobelins loads at boot,
#    possibly before its transport connects). A process that went to node
#    1 and back keeps an address space linked at node 0, so node 0's
#    container layer stays synced through the death (alone and with
#    nothing linked, it would start afresh), and the restarted node must
#    join by the protocol's join round (its log says so). Then the same
#    sharing as in 1, from a process started on the restarted node (homed
#    there), and from one started on node 0 that moves to it.
# 3. With 3 nodes or more, every node but 0 is killed at once and started
#    again at once, while the process of 2 keeps node 0 synced: the nodes
#    that come back must all join node 0's view (not boot one of their
#    own together), and pages are shared again between node 0 and them.
. "$(dirname "$0")/lib.sh"

OUT=/tmp/pageshare.out
[ "$NODES" -ge 2 ] || fail "needs 2 nodes, the cluster has $NODES"

# share HOME NODE...: pageshare NODE... started on HOME; checks every line.
share() {
	local home=$1 pid i st
	shift
	pid=$(cx "$home" "pageshare $* >$OUT 2>&1 </dev/null & echo \$!") ||
		fail "node $home: cannot start pageshare"
	# The page is read on every NODE, then written on the last.
	for step in "ready on node ${*: -1}" "wrote B on node ${*: -1}"; do
		for i in $(seq 300); do
			cx "$home" "grep -q '$step' $OUT" 2>/dev/null && break
			cx "$home" "grep -q FAIL $OUT" 2>/dev/null && i=300 && break
			sleep 0.1
		done
		[ "$i" -lt 300 ] ||
			fail "pageshare $* on node $home: no '$step': $(cx "$home" "cat $OUT" 2>&1 | tr '\n' '|')"
		cx "$home" "kill -USR1 $pid" || fail "node $home: kill -USR1 $pid"
	done
	st=$(cx "$home" "while [ -e /proc/$pid ]; do sleep 0.1; done; cat $OUT" 2>&1)
	echo "$st" | sed "s/^/# node $home: /"
	echo "$st" | grep -q FAIL && fail "pageshare $* on node $home failed"
	echo "$st" | grep -q "read B on node $home" ||
		fail "pageshare $* on node $home did not read the new value at home"
}

others=$(seq -s ' ' 1 $LAST)
mark_all containers-rejoin
migrate_ready

r=$(cx 0 "rmmod popcorn && rmmod gobelins" 2>&1) || fail "node 0: rmmod popcorn gobelins: $r"
popcorn_load 0
wait_pcntl_nodes 0 "$(seq -s ' ' 0 $LAST)" 30000 || fail "node 0 does not list every node after the reload"
cx 0 "dmesg | grep 'container layer' | tail -n 2" | sed 's/^/# /'
share 0 $others
note "a container homed at node 0's new container layer is shared by nodes 0..$LAST"

# Node 1 dies only once the holder sleeps again at node 0, in its
# nanosleep: before, it waits in a fault (wchan process_timeout) for the
# page of its stack that it wrote on node 1, and node 1's death would lose
# that page and SIGBUS the holder (gobelins.rst). Its wchan is then
# hrtimer_nanosleep, or do_syscall_64 when the move interrupted the sleep
# and restart_syscall(2) resumes it: hrtimer_nanosleep_restart() and
# do_nanosleep() are scheduler functions, which wchan skips, and
# sys_restart_syscall() and x64_sys_call() reach them by tail calls,
# which leave no frame.
holder=$(cx 0 "sleep 600 >/dev/null 2>&1 </dev/null & p=\$!
	$(comm_wait_sh '$p' sleep)
	pcntl migrate \$p 1 >/dev/null && pcntl migrate \$p 0 >/dev/null &&
	$(proc_wait_sh '$p' wchan 'hrtimer_*|do_syscall_64') && echo \$p" 2>&1)
case $holder in '' | *[!0-9]*) fail "node 0: no process linked there: $holder" ;; esac
note "pid $holder went to node 1 and back: its address space is linked at node 0"
t0=$(now_ms)
"$COHORT" kill "$LAST" >/dev/null || fail "cohort kill $LAST failed"
# The survivors count it down before it comes back (one heartbeat bound).
hb=$(param 0 heartbeat_timeout_ms)
sleep $(((2 * hb + 999) / 1000))
bring_back "$LAST"
note "node $LAST killed and back in $(($(now_ms) - t0)) ms"
joined=$(cx "$LAST" "dmesg | grep 'container layer'" 2>&1)
echo "$joined" | sed 's/^/# /'
echo "$joined" | grep -q "joins the container layer of node" ||
	fail "node $LAST did not join its synced peers' container layer"
share "$LAST" 0
note "a container homed at the restarted node $LAST is shared with node 0"
share 0 "$LAST"
note "a container homed at node 0 is shared with the restarted node $LAST"

# 3. Every node but 0 killed and started again at once.
if [ "$NODES" -ge 3 ]; then
	for n in $others; do
		"$COHORT" kill "$n" >/dev/null || fail "cohort kill $n failed"
	done
	sleep $(((2 * hb + 999) / 1000))
	for n in $others; do
		"$COHORT" start "$n" >/tmp/cr-$n.out 2>&1 &
	done
	wait
	migrate_ready
	for n in $others; do
		r=$(cx "$n" "dmesg | grep 'container layer'" 2>&1)
		echo "$r" | sed "s/^/# node $n: /"
		echo "$r" | grep -q "joins the container layer of node" ||
			fail "node $n did not join the synced node's view"
		echo "$r" | grep -q "boots the container layer" &&
			fail "node $n booted a view of its own while node 0 was synced"
	done
	share 0 $others
	note "nodes $others, killed and back at once, joined node 0's view and share its pages"
fi
cx 0 "kill $holder" || fail "node 0: kill $holder"
check_dmesg containers-rejoin
