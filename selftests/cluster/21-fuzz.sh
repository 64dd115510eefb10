#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# fuzz: `cohort fuzz` attacks node 0's kmsg from a rogue port on the switch
# for $COHORT_FUZZ_SECS (default 60, at least 60) seconds with every kind of
# case, while a counting program migrates between node 0 and node 1 and
# back. Afterwards: the fuzzer ran to its end; every node still sees every
# other up, and node 0 never lost a real peer (its `resets` and `ups` did
# not move); ping and a 64 KiB echo from node 0 to node 1 work; every
# migration succeeded (at least 5 round trips) and the program's output
# has no gap; node 0's listener counted the bad connections (`accepted`
# and `malformed` + `refused` + `auth_failed` went up) and let none of
# them in (the fuzzer has no key: it never gets past the handshake);
# node 0's Slab (/proc/meminfo) grew
# by at most SLAB_MARGIN_KB once the attack was over (the attack's
# connections are freed; migrations and the container layer keep some
# slab); no kernel problem in any node's log, and kmemleak (on the debug
# kernel) reports nothing.
# Then, since a live peer's slot can no longer be taken, the frame parser
# behind the handshake is fuzzed through a vacant one: node $LAST is killed
# and the fuzzer, given the cluster's key ($COHORT_STATE/cluster.key),
# claims its id for $VACANT_SECS s: it completes the handshake as node
# $LAST and sends valid frames, damaged frames with good tags, bad tags,
# replays and reorders (kinds insider, bad-mac, auth-proof). The fuzzer
# fails if node 0's proof or a tag of node 0's frames is wrong; node 0
# must have counted node $LAST up (the handshakes worked), bad tags
# (`bad_tags`) and bad frames (`errors` + `drops`) from it. On a cluster
# without authentication (`cohort up --no-auth`, no key) the old phase
# runs instead: Hellos and damaged frames, errors + drops up. The real
# node $LAST must rejoin, migrate and answer a ping afterwards.
# The seed is $COHORT_FUZZ_SEED, else the clock,
# and is printed so that a failure can be replayed.
. "$(dirname "$0")/lib.sh"

SECS=${COHORT_FUZZ_SECS:-60}
[ "$SECS" -ge 60 ] || SECS=60
SEED=${COHORT_FUZZ_SEED:-$(date +%s)}
SLAB_MARGIN_KB=4096
OUT=/tmp/fuzz-count.out
VACANT_SECS=30
KEY=$COHORT_STATE/cluster.key

mark_all fuzz
migrate_ready

# start_count: starts `count` on node 0 (output in $OUT), sets $pid once
# it runs the program (not its shell, which cannot move mid-exec).
start_count() {
	pid=$(cx 0 "rm -f $OUT $OUT.pid
		sh -c 'count 100000 100 >$OUT 2>&1 </dev/null & echo \$! >$OUT.pid' >/dev/null 2>&1 </dev/null &
		$(file_wait_sh $OUT.pid); cat $OUT.pid") || fail "cannot start count on node 0"
	[ -n "$pid" ] || fail "count did not start on node 0"
	r=$(wait_comm 0 "$pid" count) || fail "node 0: $r"
}

slab() { cx "$1" "sed -n 's/^Slab: *\([0-9]*\) kB/\1/p' /proc/meminfo"; }
listener() { cx 0 "cat $KD/listener"; }

before=$(peers 0)
lst0=$(listener)
slab0=$(slab 0)
note "node 0 before: $lst0; Slab ${slab0} kB"

start_count

flog=$(mktemp)
trap 'rm -f "$flog"' EXIT
note "cohort fuzz --node 0 --duration $SECS --seed $SEED"
"$COHORT" fuzz --node 0 --duration "$SECS" --seed "$SEED" --progress 10 >"$flog" 2>&1 &
fpid=$!

trips=0
while kill -0 "$fpid" 2>/dev/null; do
	for to in 1 0; do
		r=$(cx 0 "pcntl migrate $pid $to" 2>&1) || {
			kill "$fpid" 2>/dev/null
			sed 's/^/# /' "$flog"
			fail "under fuzzing, pcntl migrate $pid $to failed: $r"
		}
		w=$(cx 0 "pcntl where $pid" 2>&1)
		[ "$w" = "$to" ] || {
			kill "$fpid" 2>/dev/null
			fail "after pcntl migrate $pid $to, pcntl where says '$w'"
		}
		sleep 1
	done
	trips=$((trips + 1))
done
wait "$fpid"
fstatus=$?
sed 's/^/# /' "$flog"
[ "$fstatus" = 0 ] || fail "cohort fuzz exited with status $fstatus"
note "$trips migration round trips (node 0 -> 1 -> 0) under fuzzing"
[ "$trips" -ge 5 ] || fail "only $trips migration round trips in $SECS s"

mesh_ok $(seq 0 $LAST) || fail "a node lost a peer"
after=$(peers 0)
for m in $(seq 1 $LAST); do
	for k in resets ups; do
		b=$(field "$(echo "$before" | awk -v p=$m '$1 == p')" $k)
		a=$(field "$(echo "$after" | awk -v p=$m '$1 == p')" $k)
		[ "$a" = "$b" ] || fail "node 0's connection to node $m was reset: $k $b -> $a"
	done
done
r=$(kop 0 ping "1 10") || fail "ping 1 10 from node 0: $r"
r=$(kop 0 echo "1 65536 3") || fail "echo 1 65536 3 from node 0: $r"
note "node 0 -> node 1: ping and 64 KiB echo work"

text=$(cx 0 "kill $pid; sleep 0.5; cat $OUT")
bad=$(echo "$text" | awk '
	$0 !~ /^[0-9]+ node [0-9]+$/ { if ($0 != "") print "line " NR " malformed: " $0; exit }
	$1 != NR { print "line " NR " is number " $1; exit }')
[ -z "$bad" ] || fail "count's output: $bad"
note "count printed $(echo "$text" | wc -l) lines without a gap, $(echo "$text" | grep -c ' node 1$') on node 1"

lst1=$(listener)
note "node 0 after: $lst1"
# lkv TEXT KEY: KEY's value in a listener line, 0 if it has none.
lkv() {
	local v
	v=$(kv "$1" "$2")
	echo "${v:-0}"
}
acc=$(($(lkv "$lst1" accepted) - $(lkv "$lst0" accepted)))
bad=0
for k in malformed refused auth_failed; do
	bad=$((bad + $(lkv "$lst1" $k) - $(lkv "$lst0" $k)))
done
[ "$acc" -gt 0 ] || fail "node 0 accepted no connection from the fuzzer"
[ "$bad" -gt 0 ] || fail "node 0 counted no bad connection"
intro=$(($(kv "$lst1" introduced) - $(kv "$lst0" introduced)))
[ "$intro" = 0 ] || fail "node 0 let $intro connection(s) of the fuzzer in"

# The attack's sockets and buffers are freed once its connections are
# gone; give RCU and the slab caches a moment.
sleep 3
slab1=$(slab 0)
grow=$((slab1 - slab0))
note "node 0: Slab ${slab0} -> ${slab1} kB ($grow kB, margin $SLAB_MARGIN_KB kB)"
[ "$grow" -le "$SLAB_MARGIN_KB" ] || fail "node 0's slab grew by $grow kB under fuzzing"

# ---- the parser, through a vacant node id ----
"$COHORT" kill "$LAST" >/dev/null || fail "cohort kill $LAST failed"
wait_state 0 "$LAST" down 10 || fail "node 0 still sees the killed node $LAST up"
p0=$(peer_line 0 "$LAST")
if [ -f "$KEY" ]; then
	how="--key $KEY --kinds insider,bad-mac,auth-proof"
else
	how="--kinds hello,mutated,truncated"
	note "no $KEY (a cluster without authentication): Hellos and damaged frames only"
fi
note "node $LAST killed; cohort fuzz --claim $LAST $how for $VACANT_SECS s"
# shellcheck disable=SC2086 # $how is words
"$COHORT" fuzz --node 0 --duration "$VACANT_SECS" --seed "$((SEED + 1))" --claim "$LAST" \
	$how --progress 10 >"$flog" 2>&1 ||
	{ sed 's/^/# /' "$flog"; fail "cohort fuzz --claim $LAST failed (a wrong proof or tag from node 0 is shown above)"; }
sed 's/^/# /' "$flog" | tail -n 12
p1=$(peer_line 0 "$LAST")
# pf KEY: how much node 0's KEY about node $LAST went up (0 if absent).
pf() {
	local a b
	a=$(field "$p1" "$1")
	b=$(field "$p0" "$1")
	echo $((${a:-0} - ${b:-0}))
}
bad=$(($(pf errors) + $(pf drops)))
took=$(pf ups)
tags=$(pf bad_tags)
note "the fuzzer held node $LAST's slot $took time(s); node 0 counted $bad bad frame(s) and $tags bad tag(s) from it"
[ "$took" -gt 0 ] || fail "the fuzzer never got node $LAST's vacant slot"
[ "$bad" -gt 0 ] || fail "node 0 counted no bad frame from the fuzzer as node $LAST"
if [ -f "$KEY" ]; then
	[ "$tags" -gt 0 ] || fail "node 0 counted no bad tag from the fuzzer as node $LAST"
fi
bring_back "$LAST"
r=$(kop 0 ping "$LAST 10") || fail "ping $LAST 10 from node 0 after node $LAST came back: $r"
start_count
for to in "$LAST" 0; do
	r=$(cx 0 "pcntl migrate $pid $to" 2>&1) || fail "after node $LAST came back, pcntl migrate $pid $to failed: $r"
done
cx 0 "kill $pid" >/dev/null 2>&1
note "node $LAST rejoined; ping and a migration there and back work"

out=$("$COHORT" logscan --kmemleak --since "${COHORT_MARKS_DIR:-$COHORT_STATE}/marks-fuzz" 2>&1) ||
	{ echo "$out" | sed 's/^# //; s/^/# /'; fail "kernel log or kmemleak shows a problem (above)"; }
