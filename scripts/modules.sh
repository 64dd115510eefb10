#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build kmsg.ko, popcorn.ko and gobelins.ko against the cached kernel.
#
# The sources are mirrored into build/modules (with rust/proto beside them,
# where the modules' #[path] includes expect it) so that Kbuild's outputs
# stay out of the work tree; rsync keeps timestamps, so a rebuild only
# recompiles the modules whose sources changed. Warnings are errors.
. "$(dirname "$0")/lib.sh"

[ -f "$KERNEL_DIR/key" ] || die "no kernel built yet: run scripts/kernel.sh"
[ "$(cat "$KERNEL_DIR/key")" = "$("$COHORT_ROOT/scripts/kernel.sh" --print-key)" ] ||
	die "the cached kernel is not built from this tree: run scripts/kernel.sh"

MODULES=(kmsg popcorn gobelins)
out=$COHORT_BUILD/modules
mkdir -p "$out/rust"
for m in "${MODULES[@]}"; do
	rsync -a --delete --exclude='*.o' --exclude='*.ko' --exclude='.*.cmd' \
		--exclude='*.mod*' --exclude=modules.order --exclude=Module.symvers \
		"$COHORT_ROOT/$m/" "$out/$m/"
done
rsync -a --delete "$COHORT_ROOT/rust/proto/" "$out/rust/proto/"
printf 'obj-m += %s/\n' "${MODULES[@]}" >"$out/Kbuild"

start=$(date +%s)
if ! kmake -j"$JOBS" M="$out" KRUSTFLAGS=-Dwarnings KCFLAGS=-Werror modules \
	>"$out/build.log" 2>&1; then
	grep -E '^(error|warning)' -A12 "$out/build.log" >&2 || tail -n 40 "$out/build.log" >&2
	die "module build failed; full log in $out/build.log"
fi
for m in "${MODULES[@]}"; do
	[ -f "$out/$m/$m.ko" ] || die "$m.ko was not produced"
done
log modules "built ${MODULES[*]} in $(($(date +%s) - start)) s"
