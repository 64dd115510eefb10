#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the patched Cohort kernel, cached outside the work tree.
#
# The kernel source is Debian's linux-source-6.12, plus patches/series (edits
# to existing kernel files only), plus Cohort's own kernel files copied in as
# they are: kernel/ (mirrors the kernel tree: kernel/cohort/, the headers, the
# x86 helpers), the top-level Kconfig (installed as kernel/cohort/Kconfig)
# and rust/kernel/ (the kernel crate's `cohort` module).
#
# The cache key hashes everything the kernel is built from: the Debian
# linux-source package version, patches/, kernel/, Kconfig, config/,
# rust/kernel/, this script and the kernel toolchain versions. An unchanged
# key costs nothing. A changed key re-syncs one persistent tree by content
# (rsync --checksum, so untouched files keep their timestamps) and lets Kbuild
# rebuild incrementally.
#
# Usage: kernel.sh [--print-key]
. "$(dirname "$0")/lib.sh"

pkg_version=$(dpkg-query -W -f='${Version}' linux-source-6.12)

cache_key() {
	{
		echo "linux-source-6.12 $pkg_version"
		echo "fragments: ${KERNEL_FRAGMENTS[*]##*/}"
		"$KERNEL_RUSTC" --version
		"$BINDGEN" --version
		clang --version | head -n 1
		cd "$COHORT_ROOT"
		find patches kernel Kconfig config rust/kernel scripts/kernel.sh scripts/lib.sh -type f | LC_ALL=C sort |
			xargs sha256sum
	} | sha256sum | cut -c1-16
}

key=$(cache_key)
if [ "${1:-}" = --print-key ]; then
	echo "$key"
	exit 0
fi

# One build at a time per cache: a second one waits for the first.
mkdir -p "$KERNEL_DIR"
exec 9>"$KERNEL_DIR/lock"
if ! flock -n 9; then
	log kernel "waiting for another build of $KERNEL_DIR"
	flock 9
fi

images=$KERNEL_DIR/images/$key
if [ -f "$KERNEL_DIR/key" ] && [ "$(cat "$KERNEL_DIR/key")" = "$key" ] &&
	[ -f "$images/bzImage" ]; then
	log kernel "cached: $(cat "$images/release") (key $key)"
	exit 0
fi
log kernel "building for key $key from linux-source-6.12 $pkg_version"
mkdir -p "$KERNEL_DIR"

# 1. Pristine source for this package version, extracted once.
pristine=$KERNEL_DIR/pristine-$pkg_version
if [ ! -f "$pristine/.extracted" ]; then
	rm -rf "$pristine" "$pristine.tmp"
	mkdir -p "$pristine.tmp"
	log kernel "extracting $KERNEL_TARBALL"
	tar -C "$pristine.tmp" --strip-components=1 -xf "$KERNEL_TARBALL"
	touch "$pristine.tmp/.extracted"
	mv "$pristine.tmp" "$pristine"
fi

# 2. Stage = pristine + series + Cohort's kernel files.
stage=$KERNEL_DIR/stage
rsync -a --delete "$pristine/" "$stage/"
while read -r patch; do
	case "$patch" in '' | '#'*) continue ;; esac
	patch -d "$stage" -p1 --quiet --forward <"$COHORT_ROOT/patches/$patch" ||
		die "patches/$patch does not apply to linux-source-6.12 $pkg_version"
done <"$COHORT_ROOT/patches/series"
# install_tree DIR DEST: copy Cohort's DIR/ to DEST/ in the stage (DEST empty:
# the top). It only adds files: one that the kernel already has would be
# replaced unseen, so that is an error.
install_tree() {
	local dir=$1 dest=${2:+$2/} f
	while IFS= read -r f; do
		[ ! -e "$pristine/$dest$f" ] ||
			die "$dir/$f would replace the kernel's own $dest$f"
	done < <(cd "$COHORT_ROOT/$dir" && find . -type f -printf '%P\n')
	cp -r "$COHORT_ROOT/$dir/." "$stage/$dest"
}
# kernel/ mirrors the kernel source tree; rust/kernel/ the kernel crate's
# directory (cohort.rs + cohort/). The top-level Kconfig becomes
# kernel/cohort/Kconfig, which init/Kconfig sources (patch 0012).
install_tree kernel ""
install_tree rust/kernel rust/kernel
cp "$COHORT_ROOT/Kconfig" "$stage/kernel/cohort/Kconfig"

# 3. Sync by content into the persistent tree: only changed files get a new
# mtime, so Kbuild rebuilds just what the change touches.
mkdir -p "$KERNEL_SRC" "$KERNEL_OBJ"
rsync -rlpc --delete --exclude=/.extracted "$stage/" "$KERNEL_SRC/"
rm -rf "$stage"

# 4. Configuration: tinyconfig + our fragment, replaced only when it changed.
cfgdir=$KERNEL_DIR/config-tmp
rm -rf "$cfgdir"
mkdir -p "$cfgdir"
KERNEL_OBJ=$cfgdir kmake -s tinyconfig >/dev/null
KCONFIG_CONFIG=$cfgdir/.config "$KERNEL_SRC/scripts/kconfig/merge_config.sh" \
	-m -O "$cfgdir" "$cfgdir/.config" "${KERNEL_FRAGMENTS[@]}" >/dev/null
KERNEL_OBJ=$cfgdir kmake -s olddefconfig >/dev/null
for opt in $(cat "${KERNEL_FRAGMENTS[@]}" | grep -o '^CONFIG_[A-Z0-9_]*=[ym]'); do
	grep -qx "$opt" "$cfgdir/.config" ||
		die "config: $opt did not survive olddefconfig (missing dependency?)"
done
if ! cmp -s "$cfgdir/.config" "$KERNEL_OBJ/.config"; then
	cp "$cfgdir/.config" "$KERNEL_OBJ/.config"
fi
rm -rf "$cfgdir"

# 5. Build. `all` also writes Module.symvers for out-of-tree modules.
run_with_progress kernel "$KERNEL_DIR/build.log" kmake -j"$JOBS" all
# uapi headers (for pcntl(2) and the selftests) into $KERNEL_OBJ/usr/include.
kmake -s headers

mkdir -p "$images"
cp "$KERNEL_OBJ/arch/x86/boot/bzImage" "$images/bzImage"
cp "$KERNEL_OBJ/.config" "$images/config"
kmake -s kernelrelease >"$images/release"
echo "$key" >"$KERNEL_DIR/key"

# Keep the three newest images and only this package version's source.
ls -1dt "$KERNEL_DIR"/images/*/ 2>/dev/null | tail -n +4 | xargs -r rm -rf
for old in "$KERNEL_DIR"/pristine-*; do
	[ "$old" = "$pristine" ] || rm -rf "$old"
done
log kernel "built $(cat "$images/release") (key $key)"
