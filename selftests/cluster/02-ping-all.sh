#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# ping-all: from every node, 100 pings to every peer succeed.
. "$(dirname "$0")/lib.sh"

for n in $(seq 0 $LAST); do
	for m in $(seq 0 $LAST); do
		[ "$n" = "$m" ] && continue
		r=$(kop "$n" ping "$m 100") || fail "node $n -> $m: ping 100 failed: $r"
		[ "$(kv "$r" count)" = 100 ] && [ -z "$(kv "$r" error)" ] ||
			fail "node $n -> $m: unexpected result '$r'"
		note "node $n -> $m: avg $(kv "$r" avg_ns) ns, max $(kv "$r" max_ns) ns"
	done
done
