# SPDX-License-Identifier: GPL-2.0
# Helpers for the cluster scenarios: source it. They drive a running
# cluster from the host with `cohort exec/kill/start` ($COHORT_STATE
# names its state dir). A scenario prints what it does as it goes, and
# fails with `fail REASON` (the runner reports the reason).

set -uo pipefail

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COHORT=${COHORT:-$CLUSTER_DIR/../../target/release/cohort}
KMSG_KO=/lib/modules/cohort/kmsg.ko
KD=/sys/kernel/debug/kmsg

[ -n "${COHORT_STATE:-}" ] || { echo "FAIL: COHORT_STATE is not set" >&2; exit 1; }
NODES=$(sed -n 's/^nodes \([0-9]*\)$/\1/p' "$COHORT_STATE/cluster" 2>/dev/null)
[ -n "$NODES" ] || { echo "FAIL: no cluster in $COHORT_STATE" >&2; exit 1; }
LAST=$((NODES - 1))

note() { echo "# $*"; }

fail() {
	echo "FAIL: $*"
	exit 1
}

now_ms() { date +%s%3N; }

# cx NODE SHELL-CMD: run SHELL-CMD in NODE (through sh), output to stdout.
cx() {
	"$COHORT" exec --timeout "${CX_TIMEOUT:-120}" "$1" -- sh -c "$2"
}

# kmsg_loaded NODE: true if NODE has kmsg's debugfs.
kmsg_loaded() { cx "$1" "[ -e $KD/params ]" >/dev/null 2>&1; }

# kmsg_load NODE: insmod kmsg unless it is there already.
kmsg_load() {
	cx "$1" "[ -e $KD/params ] || insmod $KMSG_KO" ||
		fail "node $1: insmod $KMSG_KO failed"
}

# param NODE KEY: a value from NODE's kmsg params.
param() {
	cx "$1" "cat $KD/params" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# peers NODE: NODE's peers file.
peers() { cx "$1" "cat $KD/peers" 2>&1; }

# peer_line NODE PEER: NODE's line about PEER.
peer_line() { peers "$1" | awk -v p="$2" '$1 == p'; }

# field LINE KEY: KEY's value in a peers line (`state` is the 2nd word).
field() {
	if [ "$2" = state ]; then
		echo "$1" | awk '{ print $2 }'
	else
		echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
	fi
}

# mesh_ok NODE...: true if each NODE's peers shows itself `self` and
# every other node of the cluster `up`; otherwise prints what it saw.
mesh_ok() {
	local n m text st bad=0
	for n in "$@"; do
		text=$(peers "$n")
		for m in $(seq 0 $LAST); do
			st=$(echo "$text" | awk -v p="$m" '$1 == p { print $2 }')
			if [ "$m" = "$n" ]; then
				[ "$st" = self ] && continue
			else
				[ "$st" = up ] && continue
			fi
			echo "# node $n sees node $m as '${st:-missing}'"
			bad=1
		done
	done
	return $bad
}

# wait_mesh SECS: until every node sees every other node up.
wait_mesh() {
	local deadline=$(($(date +%s) + $1)) out
	while :; do
		out=$(mesh_ok $(seq 0 $LAST)) && return 0
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "$out"
			return 1
		fi
		sleep 0.5
	done
}

# wait_state NODE PEER STATE SECS: until NODE shows PEER in STATE.
wait_state() {
	local deadline=$(($(date +%s) + $4)) st
	while :; do
		st=$(field "$(peer_line "$1" "$2")" state)
		[ "$st" = "$3" ] && return 0
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "# node $1 still sees node $2 as '${st:-missing}' after $4 s"
			return 1
		fi
		sleep 0.5
	done
}

# kop NODE FILE ARGS: write ARGS to kmsg's debugfs FILE in NODE and print
# the result line; exit status is the write's. The shell's error message
# (with the errno) comes first.
kop() {
	cx "$1" "echo '$3' >$KD/$2; r=\$?; cat $KD/$2; exit \$r" 2>&1
}

# kv TEXT KEY: KEY's value in the last line of TEXT that has KEY=.
kv() { echo "$1" | grep "$2=" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# mark_all TAG: remember where every node's console log ends now, so that
# check_dmesg TAG only looks at what came after (a marker line also goes
# into the kernel log of every node that answers, for a human reading it).
mark_all() {
	local n
	"$COHORT" logscan --mark "${COHORT_MARKS_DIR:-$COHORT_STATE}/marks-$1" ||
		fail "cohort logscan --mark failed"
	for n in $(seq 0 $LAST); do
		cx "$n" "echo 'cohort-scenario: $1' >/dev/kmsg" >/dev/null 2>&1 || true
	done
}

# check_dmesg TAG: no kernel problem (BUG, WARNING, Oops, lockdep, hung
# task, lockup, RCU stall, sleeping in atomic context...; see `cohort
# logscan --help`) in any node's console log since mark_all TAG, read on
# the host, so a node that is down (killed on purpose) is read too. The
# runner checks after every scenario that every node answers.
check_dmesg() {
	local out
	out=$("$COHORT" logscan --logs-only --since "${COHORT_MARKS_DIR:-$COHORT_STATE}/marks-$1" 2>&1) && return 0
	echo "$out" | sed 's/^# //; s/^/# /'
	fail "kernel log shows a problem (above)"
}

# restore: every node running, kmsg loaded everywhere, full mesh.
restore() {
	local n st
	st=$("$COHORT" status 2>/dev/null)
	for n in $(seq 0 $LAST); do
		if ! echo "$st" | grep -q "^node $n: qemu pid .* running"; then
			note "restore: starting node $n"
			"$COHORT" start "$n" >/dev/null || return 1
		fi
	done
	for n in $(seq 0 $LAST); do
		cx "$n" "[ -e $KD/params ] || insmod $KMSG_KO" >/dev/null 2>&1 || return 1
	done
	# Without kmsg's debugfs there is no mesh to wait for.
	cx 0 "[ -e $KD/peers ]" >/dev/null 2>&1 || return 1
	wait_mesh 30 >/dev/null
}

# ---- waiting in a node's shell ----

# file_wait_sh FILE: shell text for a node that waits, up to 20 s, until
# FILE is not empty (a pid written by a shell started in the background),
# and exits 1 with a message if it stays empty.
file_wait_sh() {
	printf 'i=0; until [ -s %s ]; do [ $i -ge 200 ] && { echo "%s still empty after 20 s" >&2; exit 1; }; sleep 0.1; i=$((i + 1)); done' "$1" "$1"
}

# comm_wait_sh PID NAME: shell text for a node that waits, up to 20 s,
# until /proc/PID/comm is NAME (PID may be a shell expression such as
# '$p'), and exits 1 with a message otherwise. A child started with `&`
# is its shell until its execve() is done, and moving a process in the
# middle of execve() fails with EBUSY.
comm_wait_sh() {
	proc_wait_sh "$1" comm "$2"
}

# proc_wait_sh PID FILE PATTERN: shell text for a node that waits, up to
# 20 s, until /proc/PID/FILE matches the shell PATTERN, and exits 1 with a
# message otherwise. With FILE wchan: until the task sleeps where PATTERN
# says, e.g. 'hrtimer_*' for a `sleep` moved back home, which sleeps in
# its nanosleep again only once the pages it needs have come back;
# before, it waits for them in a fault (process_timeout).
proc_wait_sh() {
	printf 'i=0; until case "$(cat /proc/%s/%s 2>/dev/null)" in %s) true ;; *) false ;; esac; do [ $i -ge 200 ] && { echo "pid %s: /proc/%s/%s is '"'"'$(cat /proc/%s/%s 2>&1)'"'"', not %s, after 20 s"; exit 1; }; sleep 0.1; i=$((i + 1)); done' "$1" "$2" "$3" "$1" "$1" "$2" "$1" "$2" "$3"
}

# wait_comm NODE PID NAME: until /proc/PID/comm in NODE is NAME (20 s);
# prints why not and fails otherwise.
wait_comm() { cx "$1" "$(comm_wait_sh "$2" "$3")" 2>&1; }

# ---- migration (popcorn) ----

POPCORN_KO=/lib/modules/cohort/popcorn.ko
GOBELINS_KO=/lib/modules/cohort/gobelins.ko

# popcorn_load NODE: insmod gobelins (a process popcorn moves keeps its
# memory in gobelins' containers) and popcorn, unless they are there.
popcorn_load() {
	cx "$1" "grep -q '^gobelins ' /proc/modules || insmod $GOBELINS_KO" ||
		fail "node $1: insmod $GOBELINS_KO failed"
	cx "$1" "grep -q '^popcorn ' /proc/modules || insmod $POPCORN_KO" ||
		fail "node $1: insmod $POPCORN_KO failed"
}

# pcntl_nodes_of NODE: `pcntl nodes` in NODE, on one line.
pcntl_nodes_of() { cx "$1" "pcntl nodes" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }

# wait_pcntl_nodes NODE EXPECTED MS: until NODE's `pcntl nodes` is EXPECTED.
wait_pcntl_nodes() {
	local deadline=$(($(now_ms) + $3)) got
	while :; do
		got=$(pcntl_nodes_of "$1")
		[ "$got" = "$2" ] && return 0
		if [ "$(now_ms)" -ge "$deadline" ]; then
			echo "# node $1: pcntl nodes says '$got', expected '$2'"
			return 1
		fi
		sleep 0.2
	done
}

# migrate_ready: kmsg, gobelins and popcorn on every node, every node lists
# every node in `pcntl nodes` and its gobelins is synced (30 s each).
migrate_ready() {
	local n all
	all=$(seq -s ' ' 0 $LAST)
	for n in $(seq 0 $LAST); do
		kmsg_load "$n"
		popcorn_load "$n"
	done
	wait_mesh 30 || fail "the mesh did not form"
	for n in $(seq 0 $LAST); do
		wait_pcntl_nodes "$n" "$all" 30000 || fail "node $n does not list every node"
	done
	for n in $(seq 0 $LAST); do
		wait_synced "$n" 30000 || fail "node $n: gobelins is not part of the cluster's view"
	done
}

# wait_synced NODE MS: until NODE's container layer (gobelins) is part of
# the cluster's view: a node that just loaded it, or came back, joins or
# boots with its peers first (Documentation/gobelins.rst, Membership).
wait_synced() {
	cx "$1" "for i in \$(seq $(($2 / 100))); do
		grep -q '^synced 1' /sys/kernel/debug/gobelins/stats && exit 0; sleep 0.1; done
		grep synced /sys/kernel/debug/gobelins/stats; exit 1" 2>&1 | sed 's/^/# /'
	return "${PIPESTATUS[0]}"
}

# bring_back NODE: start NODE's QEMU again, load kmsg and popcorn, wait for
# the full mesh and for every node to list every node.
bring_back() {
	"$COHORT" start "$1" >/dev/null || fail "cohort start $1 failed"
	migrate_ready
}

# popcorn_log NODE TAG: NODE's kernel log lines from popcorn after the last
# marker of mark_all TAG (the whole log of a node that rebooted since).
popcorn_log() {
	cx "$1" "dmesg" 2>&1 | awk -v t="cohort-scenario: $2" '
		index($0, t) { n = 0; delete l; next }
		/popcorn:/ { l[n++] = $0 }
		END { for (i = 0; i < n; i++) print l[i] }'
}

# qemu_pid NODE: the pid of NODE's QEMU, from `cohort status`.
qemu_pid() {
	"$COHORT" status 2>/dev/null | sed -n "s/^node $1: qemu pid \([0-9]*\) running.*/\1/p"
}

# freeze NODE: SIGSTOP NODE's QEMU (a node that stops answering without
# closing its connections); `cohort kill NODE` ends it after. Only a QEMU
# whose command line names this cluster's state dir is signalled.
freeze() {
	local pid
	pid=$(qemu_pid "$1")
	[ -n "$pid" ] || fail "node $1: no QEMU running"
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$COHORT_STATE" ||
		fail "node $1: pid $pid is not this cluster's QEMU"
	kill -STOP "$pid" || fail "node $1: cannot stop QEMU pid $pid"
}

# pause NODE MS: stops NODE's QEMU (freeze) for MS ms and continues it.
# The guest's clock follows the host's, so on waking its soft-lockup
# detector would see every CPU silent for MS ms and report a lockup that
# is the test's doing: while paused, NODE's watchdog_thresh is raised to
# its maximum (60 s, a soft-lockup report after 120 s), then restored
# (which also restarts the detector's timestamps). MS must stay below
# 120000.
pause() {
	local thresh r pid
	[ "$2" -lt 120000 ] || fail "pause $1 $2: at most 119999 ms"
	thresh=$(cx "$1" "cat /proc/sys/kernel/watchdog_thresh" 2>&1) ||
		fail "node $1: cannot read watchdog_thresh: $thresh"
	r=$(cx "$1" "echo 60 >/proc/sys/kernel/watchdog_thresh" 2>&1) ||
		fail "node $1: cannot raise watchdog_thresh: $r"
	pid=$(qemu_pid "$1")
	freeze "$1"
	sleep "$(($2 / 1000)).$(printf %03d $(($2 % 1000)))"
	kill -CONT "$pid" || fail "node $1: cannot continue QEMU pid $pid"
	r=$(cx "$1" "echo $thresh >/proc/sys/kernel/watchdog_thresh" 2>&1) ||
		fail "node $1: cannot restore watchdog_thresh to $thresh: $r"
}

# module_refs_held MODULE: for every node where MODULE's reference count
# (/sys/module/MODULE/refcnt) is not 0, or cannot be read, one
# "node N: MODULE refcnt C" (with the modules that use it, if any),
# separated by "; ". Empty when no node holds a reference.
module_refs_held() {
	local n c users out=()
	for n in $(seq 0 $LAST); do
		c=$(cx "$n" "cat /sys/module/$1/refcnt" 2>&1) || c="unreadable ($c)"
		[ "$c" = 0 ] && continue
		users=$(cx "$n" "ls /sys/module/$1/holders 2>/dev/null" 2>/dev/null | tr '\n' ' ' | sed 's/ $//')
		out+=("node $n: $1 refcnt ${c:-unreadable}${users:+ (used by $users)}")
	done
	[ ${#out[@]} -eq 0 ] || printf '%s; ' "${out[@]}" | sed 's/; $//'
}

# balance_setup N: for the balance scenarios: nodes 2 and up refuse
# processes (so a balancer can only choose node 1) and N CPU-bound loops
# start on node 0, their pids in $pids; on exit the loops are killed and
# the nodes accept again.
ACCEPT=/sys/kernel/cohort/accept
balance_setup() {
	local n want=$1 p
	pids=
	trap balance_cleanup EXIT
	for n in $(seq 2 $LAST); do
		r=$(cx "$n" "echo 0 >$ACCEPT" 2>&1) || fail "node $n: writing 0 to $ACCEPT: $r"
	done
	pids=$(cx 0 "for i in \$(seq $want); do
			sh -c 'while :; do :; done' </dev/null >/dev/null 2>&1 &
			echo \$!
		done" | tr '\n' ' ' | sed 's/ $//')
	set -- $pids
	[ $# -eq "$want" ] || fail "started '$pids', expected $want pids"
	for p in $pids; do
		case $p in *[!0-9]*) fail "'$p' is not a pid (started: $pids)" ;; esac
	done
}

# balance_end: kills the loops of balance_setup and waits (30 s at most)
# until no node runs any of them any more.
balance_end() {
	local p deadline
	cx 0 "kill -9 $pids" >/dev/null 2>&1 || fail "cannot kill the loops"
	deadline=$(($(date +%s) + 30))
	for p in $pids; do
		while cx 0 "pcntl where $p" >/dev/null 2>&1; do
			[ "$(date +%s)" -ge "$deadline" ] && fail "loop $p still runs 30 s after SIGKILL"
			sleep 0.5
		done
	done
	pids=
}

balance_cleanup() {
	local n
	[ -n "$pids" ] && cx 0 "kill -9 $pids" >/dev/null 2>&1
	for n in $(seq 2 $LAST); do
		cx "$n" "echo 1 >$ACCEPT" >/dev/null 2>&1 ||
			echo "# node $n: cannot write 1 to $ACCEPT again"
	done
}
