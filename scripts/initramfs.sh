#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the one initramfs every node boots: busybox, the modules, the guest
# agent and the selftests; and put it beside the kernel in build/images.
. "$(dirname "$0")/lib.sh"

key=$(cat "$KERNEL_DIR/key" 2>/dev/null) || die "no kernel built yet: run scripts/kernel.sh"
images=$COHORT_BUILD/images
root=$COHORT_BUILD/initramfs
rm -rf "$root"
mkdir -p "$images" "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root} \
	"$root"/lib/modules/cohort "$root"/usr/lib/cohort/selftests

# busybox and its applets.
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list-full); do
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
ln -sf bin/busybox "$root/init"
cp "$COHORT_ROOT/tools/guest/rc" "$root/etc/rc"
cp "$COHORT_ROOT/tools/guest/inittab" "$root/etc/inittab"
chmod 755 "$root/etc/rc"
# The node configuration tool, as the cohort-node package installs it.
install -m 755 "$COHORT_ROOT/tools/node/cohort-node" "$root/usr/sbin/cohort-node"
echo 'root::0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3

# Modules.
for ko in "$COHORT_BUILD"/modules/*/*.ko; do
	[ -e "$ko" ] || die "no modules built: run scripts/modules.sh"
	cp "$ko" "$root/lib/modules/cohort/"
done

# Guest agent (pcntl(2) from the kernel's uapi headers: -F pins it).
gcc -static -O2 -Wall -Wextra -Werror -isystem "$KERNEL_OBJ/usr/include" \
	-o "$root/usr/sbin/cohort-agent" "$COHORT_ROOT/tools/agent/cohort-agent.c"
# The user-space TCP baseline of `cohort bench kmsg`.
gcc -static -O2 -Wall -Wextra -Werror -o "$root/usr/bin/tcpbench" \
	"$COHORT_ROOT/tools/guest/tcpbench.c"

# The demo's counting program.
gcc -static -O2 -Wall -Wextra -Werror -isystem "$KERNEL_OBJ/usr/include" \
	-o "$root/usr/bin/count" "$COHORT_ROOT/tools/guest/count.c"
# One page read on several nodes and written on one (scenario containers).
gcc -static -O2 -Wall -Wextra -Werror -isystem "$KERNEL_OBJ/usr/include" \
	-o "$root/usr/bin/pageshare" "$COHORT_ROOT/tools/guest/pageshare.c"
# A SysV segment used by key from several nodes (scenario shared-node-dies).
gcc -static -O2 -Wall -Wextra -Werror -isystem "$KERNEL_OBJ/usr/include" \
	-o "$root/usr/bin/shmkey" "$COHORT_ROOT/tools/guest/shmkey.c"

# libpcntl (header and static library, in $COHORT_BUILD/pcntl for programs
# built for the nodes) and the pcntl command built on it, against the
# kernel's uapi headers.
lib=$COHORT_BUILD/pcntl
mkdir -p "$lib"
gcc -O2 -Wall -Wextra -Werror -isystem "$KERNEL_OBJ/usr/include" \
	-c -o "$lib/libpcntl.o" "$COHORT_ROOT/tools/pcntl/libpcntl.c"
rm -f "$lib/libpcntl.a"
ar rcs "$lib/libpcntl.a" "$lib/libpcntl.o"
cp "$COHORT_ROOT/tools/pcntl/libpcntl.h" "$lib/"
gcc -static -O2 -Wall -Wextra -Werror -isystem "$KERNEL_OBJ/usr/include" \
	-I "$lib" -o "$root/usr/bin/pcntl" "$COHORT_ROOT/tools/pcntl/pcntl.c" \
	-L "$lib" -lpcntl
gcc -static -O2 -Wall -Wextra -Werror -isystem "$KERNEL_OBJ/usr/include" \
	-I "$lib" -o "$root/usr/bin/migbench" "$COHORT_ROOT/tools/guest/migbench.c" \
	-L "$lib" -lpcntl
# A node filled past its memory by a migrated process (scenario
# memory-pressure).
gcc -static -O2 -Wall -Wextra -Werror -isystem "$KERNEL_OBJ/usr/include" \
	-I "$lib" -o "$root/usr/bin/memfill" "$COHORT_ROOT/tools/guest/memfill.c" \
	-L "$lib" -lpcntl

# The shared cases of kinds of state a migration must keep (each a small
# program printing PASS or FAIL), run by selftests/cluster/20-cases.sh.
# They live beside the repository ($COHORT_CASES overrides); without them
# the scenario fails saying so.
cases=${COHORT_CASES:-$COHORT_ROOT/../shared/cases}
mkdir -p "$root/usr/lib/cohort/cases"
for c in "$cases"/*.c; do
	[ -e "$c" ] || break
	gcc -static -O2 -pthread -o "$root/usr/lib/cohort/cases/$(basename "$c" .c)" "$c" ||
		die "building case $c failed"
done

# Selftests, against the kernel's harness and uapi headers.
make -s -C "$COHORT_ROOT/selftests" \
	KSFT_DIR="$KERNEL_SRC/tools/testing/selftests" \
	KHDR="$KERNEL_OBJ/usr/include" O="$COHORT_BUILD/selftests" \
	EXTRA_CFLAGS=-Werror all
cp "$COHORT_BUILD"/selftests/*_test "$root/usr/lib/cohort/selftests/"
install -m 755 "$COHORT_ROOT/selftests/run" "$root/usr/lib/cohort/selftests/run"

(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) |
	gzip -1 >"$images/initramfs.cpio.gz.tmp"
mv "$images/initramfs.cpio.gz.tmp" "$images/initramfs.cpio.gz"
cp "$KERNEL_DIR/images/$key/bzImage" "$images/bzImage"
cp "$KERNEL_DIR/images/$key/release" "$images/release"
log initramfs "$(du -h "$images/initramfs.cpio.gz" | cut -f1) initramfs for $(cat "$images/release")"
