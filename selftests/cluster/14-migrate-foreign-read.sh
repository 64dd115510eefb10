#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# migrate-foreign-read: a process with a 30000-byte environment variable
# moves from node 0 to node 1, where it does not touch those pages again.
# A shell on node 1 reads its /proc/PID/environ and cmdline there: the
# faults another task takes in a migrated process's memory fetch its pages
# as the process's own would (a local fault would read zeroes, and leave
# an empty page in the process's memory). Back on node 0, its environ is
# whole too.
. "$(dirname "$0")/lib.sh"

BIG=30000

mark_all migrate-foreign-read
migrate_ready

pid=$(cx 0 "B=\$(head -c $BIG /dev/zero | tr '\\0' x)
	env BIG=\$B sleep 600 >/dev/null 2>&1 </dev/null &
	echo \$!") || fail "cannot start the process on node 0"
[ -n "$pid" ] || fail "no pid"
note "sleep with a $BIG-byte environment variable on node 0 as pid $pid"
# It is env until env execs sleep: moving it in execve() fails with EBUSY,
# and moved before, env would exec sleep on node 1 (fine) or the search
# below could run before it is sleep there.
r=$(wait_comm 0 "$pid" sleep) || fail "node 0: $r"
r=$(cx 0 "pcntl migrate $pid 1" 2>&1) || fail "pcntl migrate $pid 1: $r"

# Its pid on node 1: the only `sleep` there.
lpid=$(cx 1 'for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = sleep ] && echo ${d#/proc/}; done' | head -n 1)
[ -n "$lpid" ] || fail "no sleep process on node 1"
x=$(cx 1 "tr -cd x </proc/$lpid/environ | wc -c" | tr -d ' ')
c=$(cx 1 "tr '\\0' ' ' </proc/$lpid/cmdline")
note "node 1, pid $lpid: environ has $x x's, cmdline '$c'"
[ "$x" = "$BIG" ] || fail "node 1 read $x of the $BIG x's of its environment"
[ "$c" = "sleep 600 " ] || fail "node 1 read its command line as '$c'"

r=$(cx 0 "pcntl migrate $pid 0" 2>&1) || fail "pcntl migrate $pid 0: $r"
x=$(cx 0 "tr -cd x </proc/$pid/environ | wc -c" | tr -d ' ')
cx 0 "kill $pid" >/dev/null 2>&1
[ "$x" = "$BIG" ] || fail "back on node 0, $x of the $BIG x's are left"
check_dmesg migrate-foreign-read
