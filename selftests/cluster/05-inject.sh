#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# inject: node 0 writes malformed frames to node 1. A bad checksum is
# dropped (drops+1, exactly) with the connection kept; a bad magic, length
# or node id is an error (errors+1, exactly, once the connection is back)
# that resets the connection, which comes back up within 20 s. On an
# authenticated cluster (params auth=chacha20-poly1305) the damaged frames carry
# good tags, so they reach the parser behind the tag check, and three more
# kinds follow: a wrong tag, a replayed frame and two reordered frames,
# each exactly one bad tag (bad_tags+1, errors+1) and a reset. Without
# authentication those three must fail with EOPNOTSUPP. Afterwards node
# 0 -> 1 pings still work.
. "$(dirname "$0")/lib.sh"

mark_all inject
kinds="bad-checksum bad-magic bad-length bad-node"
tag_kinds="bad-tag replay reorder"
auth=$(cx 1 "cat $KD/params" | sed -n 's/.*auth=\([a-z0-9-]*\).*/\1/p')
case "$auth" in
chacha20-poly1305) kinds="$kinds $tag_kinds" ;;
none)
	for kind in $tag_kinds; do
		! cx 0 "echo '1 $kind' >$KD/inject" 2>/dev/null ||
			fail "$kind was accepted without authentication"
	done
	note "auth=none: $tag_kinds refused"
	;;
*) fail "node 1's params show no auth mode: '$(cx 1 "cat $KD/params")'" ;;
esac
for kind in $kinds; do
	before=$(peer_line 1 0)
	[ "$(field "$before" state)" = up ] || fail "node 1 does not see node 0 up before $kind: '$before'"
	case "$kind" in
	bad-checksum) counter=drops ;;
	bad-tag | replay | reorder) counter=bad_tags ;;
	*) counter=errors ;;
	esac
	c0=$(field "$before" "$counter")
	e0=$(field "$before" errors)
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
	if [ "$counter" = bad_tags ]; then
		[ "$(field "$after" errors)" -eq $((e0 + 1)) ] ||
			fail "$kind: a bad tag must count one error: errors $e0 -> $(field "$after" errors)"
	fi
done
r=$(kop 0 ping "1 10") || fail "node 0 -> 1: ping after the injections failed: $r"
check_dmesg inject
