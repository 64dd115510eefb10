#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# config: nodes that get their identity only from a node configuration
# file (/etc/cohort/cohort.conf, applied by cohort-node from /etc/rc, as
# cohort.service does on a real machine), with addresses and a port that
# are not the test cluster's.
#
# 1. Every node is killed, then booted again in turn with `cohort start N
#    --config FILE`: no cohort.node_id/nr_nodes/peers/port on its kernel
#    command line; FILE says node_id = N, peers = 10.77.0.11,... (with
#    CONFIG_FAMILY=6, as 28-config-ipv6 runs it: [fd00:c0:ec::11],...),
#    port = $PORT, heartbeat_timeout_ms = $HEARTBEAT. /etc/rc gives eth0
#    that address too. Each node's /sys/kernel/cohort and kmsg's params
#    and peers show the file's identity and heartbeat timeout, and the
#    mesh forms (`cohort start` waits for it).
# 2. Pings both ways over kmsg; a process (count) migrates from node 0 to
#    node 1 and back, printing on node 1 in between.
# 3. The identity cannot change under kmsg: writing node_id in
#    /sys/module/cohort/parameters fails with EBUSY (the hub logs why), a
#    bad peers value with EINVAL, `cohort-node apply` refuses, and the hub
#    still shows the file's identity.
# On the way out every node is booted again with its recorded command
# line, and migration is made ready for the next scenarios.
. "$(dirname "$0")/lib.sh"

FAMILY=${CONFIG_FAMILY:-4}
BOOT_SECS=180
MESH_SECS=60
LIMIT=200
# Not `cohort up`'s, so that it shows the file's value.
HEARTBEAT=9000
OUT=/tmp/config-count.out
PARAMS=/sys/module/cohort/parameters

[ "$NODES" -ge 2 ] || fail "needs 2 nodes, the cluster has $NODES"

if [ "$FAMILY" = 6 ]; then
	PORT=17778
	addr() { echo "fd00:c0:ec::$((11 + $1))"; }
	peer_entry() { echo "[$(addr "$1")]"; }
else
	PORT=17777
	addr() { echo "10.77.0.$((11 + $1))"; }
	peer_entry() { addr "$1"; }
fi
peer_list=$(for n in $(seq 0 $LAST); do peer_entry "$n"; done | paste -sd, -)

tmp=$(mktemp -d)
# Set once a node boots with a configuration file.
configured=
cleanup() {
	local n
	if [ -n "$configured" ]; then
		echo "# booting every node with its recorded command line again"
		for n in $(seq 0 $LAST); do
			"$COHORT" kill "$n" >/dev/null 2>&1
		done
		for n in $(seq 0 $LAST); do
			"$COHORT" start "$n" >/dev/null 2>&1 || echo "# cohort start $n failed"
		done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

mark_all config

# ---- 1. boot from the configuration files ----
for n in $(seq 0 $LAST); do
	cat >"$tmp/node$n.conf" <<EOF
# Written by selftests/cluster/27-config.sh for node $n.
node_id = $n
peers = $peer_list
port = $PORT
# The default, given: cohort-node writes it to the hub as echo would.
key_file = /etc/cohort/cluster.key
heartbeat_timeout_ms = $HEARTBEAT
EOF
done
note "peers = $peer_list, port = $PORT"
for n in $(seq 0 $LAST); do
	"$COHORT" kill "$n" >/dev/null 2>&1 || fail "cohort kill $n failed"
done
configured=1
for n in $(seq 0 $LAST); do
	t0=$(now_ms)
	"$COHORT" start "$n" --timeout "$BOOT_SECS" --modules-timeout "$MESH_SECS" \
		--config "$tmp/node$n.conf" >"$tmp/start.out" 2>&1 || {
		sed 's/^/# /' "$tmp/start.out"
		cx "$n" "dmesg | grep -E 'cohort|kmsg' | tail -n 20" 2>&1 | sed 's/^/# /'
		fail "cohort start $n --config failed"
	}
	note "node $n booted from its configuration file, modules loaded, in $(($(now_ms) - t0)) ms"
done
wait_mesh "$MESH_SECS" || fail "the mesh did not form within $MESH_SECS s"

for n in $(seq 0 $LAST); do
	cmdline=$(cx "$n" "cat /proc/cmdline")
	case $cmdline in
	*cohort.node_id=* | *cohort.nr_nodes=* | *cohort.peers=* | *cohort.port=*)
		fail "node $n's kernel command line still has its identity: $cmdline"
		;;
	esac
	got=$(cx "$n" "echo \$(cat /sys/kernel/cohort/node_id /sys/kernel/cohort/nr_nodes /sys/kernel/cohort/port)")
	[ "$got" = "$n $NODES $PORT" ] ||
		fail "node $n: /sys/kernel/cohort says node_id nr_nodes port = '$got', not '$n $NODES $PORT'"
	[ "$(param "$n" port)" = "$PORT" ] || fail "node $n: kmsg's params say port=$(param "$n" port)"
	[ "$(param "$n" heartbeat_timeout_ms)" = "$HEARTBEAT" ] ||
		fail "node $n: kmsg's params say heartbeat_timeout_ms=$(param "$n" heartbeat_timeout_ms), not the file's $HEARTBEAT"
	for m in $(seq 0 $LAST); do
		line=$(peer_line "$n" "$m")
		ip=$(echo "$line" | awk '{ print $3 }')
		[ "$ip" = "$(addr "$m")" ] || fail "node $n's kmsg has node $m at '$ip', not $(addr "$m"): $line"
	done
	applied=$(cx "$n" "dmesg | grep 'cohort-node: applied' | tail -n 1")
	[ -n "$applied" ] || fail "node $n's log has no 'cohort-node: applied'"
done
note "node 0: ${applied#*] }"
note "every node's hub and kmsg show the file's identity; kmsg peers of node 0:"
peers 0 | awk '{ print "#   " $1, $2, $3 }'

# ---- 2. ping and migrate ----
for n in $(seq 1 $LAST); do
	r=$(kop 0 ping "$n 10") || fail "node 0 -> $n: ping failed: $r"
	r=$(kop "$n" ping "0 10") || fail "node $n -> 0: ping failed: $r"
done
note "pings work both ways"
migrate_ready
pid=$(cx 0 "rm -f $OUT $OUT.pid
	sh -c 'count $LIMIT 100 >$OUT 2>&1 </dev/null & echo \$! >$OUT.pid; wait \$!' \
		>/dev/null 2>&1 </dev/null &
	$(file_wait_sh $OUT.pid); cat $OUT.pid") || fail "cannot start count on node 0"
[ -n "$pid" ] || fail "count did not start on node 0"
r=$(wait_comm 0 "$pid" count) || fail "node 0: $r"
r=$(cx 0 "pcntl migrate $pid 1" 2>&1) || fail "pcntl migrate $pid 1: $r"
w=$(cx 0 "pcntl where $pid" 2>&1)
[ "$w" = 1 ] || fail "after pcntl migrate $pid 1, pcntl where $pid says '$w'"
deadline=$(($(date +%s) + 20))
until cx 0 "grep -q ' node 1\$' $OUT" >/dev/null 2>&1; do
	[ "$(date +%s)" -ge "$deadline" ] && fail "count printed nothing on node 1 within 20 s"
	sleep 0.3
done
r=$(cx 0 "pcntl migrate $pid 0" 2>&1) || fail "pcntl migrate $pid 0: $r"
w=$(cx 0 "pcntl where $pid" 2>&1)
[ "$w" = 0 ] || fail "after pcntl migrate $pid 0, pcntl where $pid says '$w'"
cx 0 "kill $pid" >/dev/null 2>&1
note "count (pid $pid) went to node 1, printed there, and came back"

# ---- 3. no identity change under kmsg ----
r=$(cx 0 "echo 1 >$PARAMS/node_id" 2>&1) && fail "writing node_id under kmsg succeeded"
case $r in *"busy"*) ;; *) fail "writing node_id under kmsg: '$r', not EBUSY" ;; esac
r=$(cx 0 "echo 10.0.0.1,fd00::1 >$PARAMS/peers" 2>&1) && fail "mixed families were accepted"
case $r in *"nvalid argument"*) ;; *) fail "writing mixed peers: '$r', not EINVAL" ;; esac
r=$(cx 0 "cohort-node apply" 2>&1) && fail "cohort-node apply under kmsg succeeded"
note "under kmsg: node_id write: ${r:+refused}; cohort-node apply: $r"
line=$(cx 0 "dmesg | grep 'cannot change cohort.node_id' | tail -n 1")
[ -n "$line" ] || fail "node 0's log does not say why node_id cannot change"
note "node 0: ${line#*] }"
got=$(cx 0 "cat /sys/kernel/cohort/node_id /sys/kernel/cohort/port" | tr '\n' ' ')
[ "$got" = "0 $PORT " ] || fail "node 0's identity changed: $got"

check_dmesg config
# Back to the recorded command lines (cleanup), then ready to migrate.
cleanup
configured=
trap - EXIT
migrate_ready
