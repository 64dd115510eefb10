#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make deb`: Cohort as Debian packages, in build/deb/.
#
# - linux-image-RELEASE, linux-headers-RELEASE, linux-libc-dev: the patched
#   kernel, made by the kernel's own `bindeb-pkg` from the cached build tree
#   scripts/kernel.sh maintains (same configuration, config/cohort.config,
#   so the same kernel the test nodes boot), under that cache's lock;
# - cohort-node: the modules (kmsg, gobelins, popcorn, for that release),
#   cohort-node (the node configuration tool), pcntl, libpcntl and
#   cohort.service, made with dpkg-deb.
#
# Usage: deb.sh (run as root, like the other build scripts).
. "$(dirname "$0")/lib.sh"

out=$COHORT_BUILD/deb

# dpkg-buildpackage and the debhelper commands bindeb-pkg's rules call.
missing=()
command -v dpkg-buildpackage >/dev/null || missing+=(dpkg-dev)
command -v dh_testdir >/dev/null || missing+=(debhelper)
command -v rsync >/dev/null || missing+=(rsync)
if [ ${#missing[@]} -gt 0 ]; then
	log deb "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
fi

"$COHORT_ROOT/scripts/kernel.sh"
"$COHORT_ROOT/scripts/modules.sh"

mkdir -p "$out"
rm -f "$out"/*.deb

# 1. The kernel's packages, under the cache's lock so that no build of
# another tree changes the build tree meanwhile.
exec 9>"$KERNEL_DIR/lock"
if ! flock -n 9; then
	log deb "waiting for another build of $KERNEL_DIR"
	flock 9
fi
key=$("$COHORT_ROOT/scripts/kernel.sh" --print-key)
[ "$(cat "$KERNEL_DIR/key")" = "$key" ] ||
	die "the cached kernel tree was rebuilt from another tree meanwhile: run make deb again"
krel=$(cat "$KERNEL_DIR/images/$key/release")
kver=$(kmake -s kernelversion)
# The Debian revision is also the kernel's build number (uname -v); the
# commit count makes later trees' packages newer.
rev=$(git -C "$COHORT_ROOT" rev-list --count HEAD 2>/dev/null || echo 1)
debver=$kver-$rev
# dpkg-buildpackage writes next to the build tree.
rm -f "$KERNEL_DIR"/linux-*.deb "$KERNEL_DIR"/linux-*.buildinfo \
	"$KERNEL_DIR"/linux-*.changes
log deb "bindeb-pkg: linux-image-$krel $debver (a relink; log in $KERNEL_DIR/deb.log)"
run_with_progress deb "$KERNEL_DIR/deb.log" \
	kmake -j"$JOBS" KDEB_PKGVERSION="$debver" bindeb-pkg
mv "$KERNEL_DIR"/linux-*.deb "$out/"
rm -f "$KERNEL_DIR"/linux-*.buildinfo "$KERNEL_DIR"/linux-*.changes
flock -u 9

# 2. cohort-node: modules, tools, unit.
root=$out/cohort-node
rm -rf "$root"
mkdir -p "$root/DEBIAN" "$root/lib/modules/$krel/updates/cohort" \
	"$root/usr/sbin" "$root/usr/bin" "$root/usr/lib/x86_64-linux-gnu" \
	"$root/usr/include" "$root/lib/systemd/system" "$root/usr/share/doc/cohort-node"
for m in kmsg gobelins popcorn; do
	install -m 644 "$COHORT_BUILD/modules/$m/$m.ko" "$root/lib/modules/$krel/updates/cohort/"
done
install -m 755 "$COHORT_ROOT/tools/node/cohort-node" "$root/usr/sbin/cohort-node"
install -m 644 "$COHORT_ROOT/tools/node/cohort.service" "$root/lib/systemd/system/cohort.service"
# libpcntl and pcntl, against this kernel's uapi headers (linux/cohort.h,
# which the linux-libc-dev package above installs for other programs).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -O2 -Wall -Wextra -Werror -isystem "$KERNEL_OBJ/usr/include" \
	-c -o "$tmp/libpcntl.o" "$COHORT_ROOT/tools/pcntl/libpcntl.c"
ar rcs "$root/usr/lib/x86_64-linux-gnu/libpcntl.a" "$tmp/libpcntl.o"
install -m 644 "$COHORT_ROOT/tools/pcntl/libpcntl.h" "$root/usr/include/libpcntl.h"
gcc -static -O2 -Wall -Wextra -Werror -isystem "$KERNEL_OBJ/usr/include" \
	-I "$COHORT_ROOT/tools/pcntl" -o "$root/usr/bin/pcntl" \
	"$COHORT_ROOT/tools/pcntl/pcntl.c" "$tmp/libpcntl.o"
strip "$root/usr/bin/pcntl"
install -m 644 "$COHORT_ROOT/tools/node/cohort.conf.example" \
	"$COHORT_ROOT/Documentation/admin-guide.rst" "$root/usr/share/doc/cohort-node/"
cat >"$root/usr/share/doc/cohort-node/copyright" <<'EOF'
Cohort: several Linux kernel instances acting as one machine.
License: GPL-2.0 (the kernel modules, tools and scripts).
EOF

ver=0.$rev
cat >"$root/DEBIAN/control" <<EOF
Package: cohort-node
Version: $ver
Architecture: amd64
Maintainer: Cohort Developers <cohort@localhost>
Depends: linux-image-$krel, kmod
Recommends: linux-libc-dev
Section: kernel
Priority: optional
Description: Cohort node: kmsg, gobelins and popcorn, and their tools
 The modules that make this machine a node of a Cohort cluster (for the
 $krel kernel), cohort-node (applies /etc/cohort/cohort.conf to the
 kernel at boot, then loads the modules), cohort.service (runs it; not
 enabled on install), pcntl and libpcntl.
EOF
cat >"$root/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
if [ "\$1" = configure ]; then
	depmod -a $krel || true
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
fi
EOF
cat >"$root/DEBIAN/postrm" <<EOF
#!/bin/sh
set -e
if [ "\$1" = remove ] || [ "\$1" = purge ]; then
	depmod -a $krel 2>/dev/null || true
fi
EOF
chmod 755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"
dpkg-deb --root-owner-group --build "$root" "$out/cohort-node_${ver}_amd64.deb" >/dev/null
rm -rf "$root"

log deb "packages in $out:"
for d in "$out"/*.deb; do
	log deb "  $(basename "$d") ($(du -h "$d" | cut -f1))"
done
