#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# inject: node 0 writes malformed frames to node 1. A bad checksum is
# dropped (drops+1, exactly) with the connection kept; a bad magic, length
# or node id is an error (errors+1, exactly, once the connection is back)
# that resets the connection, which comes back up within 20 s. Afterwards
# node 0 -> 1 pings still work.
. "$(dirname "$0")/lib.sh"

mark_all inject
for kind in bad-checksum bad-magic bad-length bad-node; do
	before=$(peer_line 1 0)
	[ "$(field "$before" state)" = up ] || fail "node 1 does not see node 0 up before $kind: '$before'"
	if [ "$kind" = bad-checksum ]; then counter=drops; else counter=errors; fi
	c0=$(field "$before" "$counter")
	r0=$(field "$before" resets)
	cx 0 "echo '1 $kind' >$KD/inject" || fail "node 0: inject '1 $kind' failed"
	deadline=$(($(date +%s) + 5))
	while :; do
		after=$(peer_line 1 0)
		c1=$(field "$after" "$counter")
		[ -n "$c1" ] && [ "$c1" -ge $((c0 + 1)) ] && break
		[ "$(date +%s)" -ge "$deadline" ] &&
			fail "$kind: node 1's $counter for node 0 went from '$c0' to '$c1' (expected +1): '$after'"
		sleep 0.3
	done
	if [ "$kind" = bad-checksum ]; then
		[ "$(field "$after" state)" = up ] && [ "$(field "$after" resets)" = "$r0" ] ||
			fail "$kind: the connection did not stay up: before '$before', after '$after'"
		note "$kind: $counter $c0 -> $c1, connection stayed up"
	else
		wait_state 1 0 up 20 || fail "$kind: connection not up again within 20 s"
		wait_state 0 1 up 20 || fail "$kind: node 0 does not see node 1 up again within 20 s"
		after=$(peer_line 1 0)
		[ "$(field "$after" resets)" -gt "$r0" ] ||
			fail "$kind: no reset counted on node 1: before '$before', after '$after'"
		c1=$(field "$after" "$counter")
		note "$kind: $counter $c0 -> $c1, resets $r0 -> $(field "$after" resets), up again"
	fi
	# One malformed frame is one drop or one error, not more.
	[ "$c1" -eq $((c0 + 1)) ] ||
		fail "$kind: node 1's $counter for node 0 went from $c0 to $c1 for one frame: '$after'"
done
r=$(kop 0 ping "1 10") || fail "node 0 -> 1: ping after the injections failed: $r"
check_dmesg inject
