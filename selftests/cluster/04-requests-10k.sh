#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# requests-10k: 10,000 sequential request/replies from node 0 to node 1.
. "$(dirname "$0")/lib.sh"

r=$(CX_TIMEOUT=300 kop 0 ping "1 10000") || fail "node 0 -> 1: ping 10000 failed: $r"
[ "$(kv "$r" count)" = 10000 ] && [ -z "$(kv "$r" error)" ] ||
	fail "node 0 -> 1: unexpected result '$r'"
note "10000 request/replies in $(kv "$r" total_ns) ns (avg $(kv "$r" avg_ns), max $(kv "$r" max_ns))"
