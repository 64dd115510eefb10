#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# wrong-key: a node that does not hold the cluster's key never joins it,
# and joins again once it does.
#
# 1. The last node is killed and booted again with another key (`cohort
#    start --key`); fw_cfg must have put that key, mode 600, in its
#    /etc/cohort/cluster.key. For $HOLD_SECS s no other node counts it up
#    nor it them, while it keeps dialing: node 0's listener counts at
#    least two failed authentications (`auth_failed`) in that window, node
#    0's log says a connection claiming to be the node failed
#    authentication, and the node's log that its handshake with node 0
#    failed because node 0's proof is wrong (`auth_failures` up in its
#    peers line).
# 2. It is booted again without authentication (`cohort start --no-auth`):
#    its kmsg's params say `auth=none`, it has no key file, and for
#    $HOLD_SECS s it is never up anywhere; node 0 counts `auth_mismatch`
#    and logs that one end authenticates and the other does not.
# 3. It is booted again with the cluster's key (a plain `cohort start`):
#    its kmsg says `auth=chacha20-poly1305`, its key file is the cluster's, the
#    mesh is whole within $REJOIN_SECS s of `cohort start` returning (its
#    modules loaded), pings work both ways, and migration is ready again
#    for the next scenarios.
# If the scenario fails half way, the node is booted with the cluster's
# key again on the way out.
. "$(dirname "$0")/lib.sh"

HOLD_SECS=10
REJOIN_SECS=30
KEY=$COHORT_STATE/cluster.key
KEY_IN_NODE=/etc/cohort/cluster.key
victim=$LAST
others=$(seq 0 $((LAST - 1)))

[ "$NODES" -ge 2 ] || fail "needs 2 nodes, the cluster has $NODES"
[ -f "$KEY" ] || fail "no $KEY: this cluster runs without authentication (cohort up --no-auth)"

tmp=$(mktemp -d)
# Set while the victim runs with another key or none.
odd=
cleanup() {
	if [ -n "$odd" ]; then
		echo "# booting node $victim with the cluster's key again"
		"$COHORT" kill "$victim" >/dev/null 2>&1
		"$COHORT" start "$victim" >/dev/null 2>&1 || echo "# cohort start $victim failed"
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# marker TAG: a line in the kernel log of every node but the victim, so
# that log_of finds what came after it.
marker() {
	local n
	for n in $others; do
		cx "$n" "echo 'cohort-scenario: $1' >/dev/kmsg" >/dev/null 2>&1 ||
			fail "node $n: cannot write to /dev/kmsg"
	done
}

# log_of NODE TAG: NODE's kernel log after the last marker TAG (all of it
# on a node without one, such as the victim, which booted since).
log_of() {
	cx "$1" "dmesg" 2>&1 | awk -v t="cohort-scenario: $2" '
		index($0, t) { n = 0; delete l; next }
		{ l[n++] = $0 }
		END { for (i = 0; i < n; i++) print l[i] }'
}

listener() { cx 0 "cat $KD/listener"; }

# lkv TEXT KEY: KEY's value in a listener or peers line, 0 if absent.
lkv() {
	local v
	v=$(kv "$1" "$2")
	echo "${v:-0}"
}

# reboot_victim [ARGS]: kill the victim, wait until the others count it
# down, and boot it again with `cohort start VICTIM ARGS` (which loads the
# cluster's modules; kmsg is loaded here too if the cluster has none
# recorded).
reboot_victim() {
	local n
	"$COHORT" kill "$victim" >/dev/null || fail "cohort kill $victim failed"
	for n in $others; do
		wait_state "$n" "$victim" down 10 || fail "node $n still counts node $victim up after the kill"
	done
	[ $# -gt 0 ] && odd="$*"
	"$COHORT" start "$victim" "$@" >"$tmp/start.out" 2>&1 || {
		sed 's/^/# /' "$tmp/start.out"
		fail "cohort start $victim $* failed"
	}
	[ $# -gt 0 ] || odd=
	kmsg_load "$victim"
}

# never_up SECS: for SECS s, polled every second, no other node counts the
# victim up and the victim counts none of them up.
never_up() {
	local deadline=$(($(date +%s) + $1)) n st mine
	while [ "$(date +%s)" -lt "$deadline" ]; do
		mine=$(peers "$victim")
		for n in $others; do
			st=$(field "$(peer_line "$n" "$victim")" state)
			[ "$st" = up ] && fail "node $n counts node $victim ($odd) up"
			st=$(echo "$mine" | awk -v p="$n" '$1 == p { print $2 }')
			[ "$st" = up ] && fail "node $victim ($odd) counts node $n up"
		done
		sleep 1
	done
}

# key_in_victim: the key file fw_cfg gave the victim, "none" if absent,
# then its mode.
key_in_victim() {
	cx "$victim" "if [ -e $KEY_IN_NODE ]; then cat $KEY_IN_NODE; stat -c %a $KEY_IN_NODE; else echo none; fi" 2>&1
}

mark_all wrong-key

# ---- 1. another key ----
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/wrong.key"
echo >>"$tmp/wrong.key"
cmp -s "$tmp/wrong.key" "$KEY" && fail "drew the cluster's own key"
marker wrong-key/other-key
l0=$(listener)
reboot_victim --key "$tmp/wrong.key"
got=$(key_in_victim)
[ "$got" = "$(cat "$tmp/wrong.key")
600" ] || fail "node $victim's $KEY_IN_NODE is not the key given, mode 600: $(echo "$got" | tr '\n' ' ')"
note "node $victim booted with another key (its $KEY_IN_NODE, mode 600)"
l1=$(listener)
never_up "$HOLD_SECS"
l2=$(listener)
note "node 0 before: $l0"
note "node 0 after $HOLD_SECS s: $l2"
tries=$(($(lkv "$l2" auth_failed) - $(lkv "$l1" auth_failed)))
[ "$tries" -ge 2 ] ||
	fail "node 0 counted $tries failed authentication(s) in $HOLD_SECS s: node $victim does not keep dialing"
note "node $victim was never up for $HOLD_SECS s; node 0 counted $tries failed authentications meanwhile"
line=$(log_of 0 wrong-key/other-key | grep "a connection claiming to be node $victim failed authentication" | tail -n 1)
[ -n "$line" ] || fail "node 0's log has no 'a connection claiming to be node $victim failed authentication'"
note "node 0: ${line#*] }"
# The victim has no marker: it booted after them, its whole log counts.
line=$(log_of "$victim" wrong-key/other-key | grep "node 0: handshake failed: its proof is wrong" | tail -n 1)
[ -n "$line" ] || fail "node $victim's log has no 'node 0: handshake failed: its proof is wrong'"
note "node $victim: ${line#*] }"
f=$(lkv "$(peer_line "$victim" 0)" auth_failures)
[ "$f" -gt 0 ] || fail "node $victim counts no failed handshake with node 0 (auth_failures=$f)"

# ---- 2. no authentication ----
marker wrong-key/no-auth
l1=$(listener)
reboot_victim --no-auth
mode=$(param "$victim" auth)
[ "$mode" = none ] || fail "node $victim booted with --no-auth, but its kmsg says auth=$mode"
got=$(key_in_victim)
[ "$got" = none ] || fail "node $victim booted with --no-auth has a key file: $(echo "$got" | tr '\n' ' ')"
never_up "$HOLD_SECS"
l2=$(listener)
note "node 0 after $HOLD_SECS s: $l2"
mism=$(($(lkv "$l2" auth_mismatch) - $(lkv "$l1" auth_mismatch)))
[ "$mism" -gt 0 ] || fail "node 0 counted no auth_mismatch from node $victim without authentication"
# Over TCP the listener refuses "a connection"; over shared memory it
# knows the node the rings belong to.
line=$(log_of 0 wrong-key/no-auth |
	grep -E "refused (a connection|node $victim on shared memory): one end authenticates, the other does not" |
	tail -n 1)
[ -n "$line" ] || fail "node 0's log has no 'refused ...: one end authenticates, the other does not'"
note "node $victim without authentication was never up; node 0 refused it $mism time(s): ${line#*] }"

# ---- 3. the cluster's key ----
t0=$(now_ms)
reboot_victim
mode=$(param "$victim" auth)
[ "$mode" = chacha20-poly1305 ] || fail "node $victim booted with the cluster's key, but its kmsg says auth=$mode"
got=$(key_in_victim)
[ "$got" = "$(cat "$KEY")
600" ] || fail "node $victim's $KEY_IN_NODE is not the cluster's key: $(echo "$got" | tr '\n' ' ')"
wait_mesh "$REJOIN_SECS" || fail "node $victim with the cluster's key did not rejoin within $REJOIN_SECS s"
note "node $victim rejoined with the cluster's key ($(($(now_ms) - t0)) ms from the kill, boot included)"
r=$(kop 0 ping "$victim 10") || fail "node 0 -> $victim: ping after the rejoin failed: $r"
r=$(kop "$victim" ping "0 10") || fail "node $victim -> 0: ping after the rejoin failed: $r"
note "pings work both ways"
# The next scenarios migrate: popcorn and gobelins ready everywhere.
migrate_ready
check_dmesg wrong-key
