#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# echo-1mib: node 0 echoes 3 messages of 1 MiB off every peer; the kernel
# compares every reply byte for byte (a mismatch fails the write: EIO).
. "$(dirname "$0")/lib.sh"

for m in $(seq 1 $LAST); do
	r=$(kop 0 echo "$m 1048576 3") || fail "node 0 -> $m: echo 1 MiB x3 failed: $r"
	[ "$(kv "$r" size)" = 1048576 ] && [ "$(kv "$r" count)" = 3 ] ||
		fail "node 0 -> $m: unexpected result '$r'"
	note "node 0 -> $m: 3 x 1 MiB echoed in $(kv "$r" total_ns) ns"
done
