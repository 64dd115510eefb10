#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Lint the kernel side of Cohort with the kernel's own tools:
#
#  - checkpatch.pl --strict on every patch of patches/series, each of which
#    must edit existing kernel files only (new files belong in kernel/), and
#    patches/series must list exactly the patches in patches/;
#  - checkpatch.pl --strict --file on every C file and header of kernel/ and
#    on the top-level Kconfig;
#  - rustfmt --check with the kernel's .rustfmt.toml on the kernel-side Rust:
#    kmsg/, popcorn/, gobelins/ and rust/kernel/ (and the rust/proto files
#    the modules include).
#
# Prints `ok NAME` or `not ok NAME` per check, the offending output indented
# below a failure, then a `# N ok, N not ok` line; exits 1 when a check
# failed. An ERROR or WARNING fails its check unless scripts/lint-kernel.allow
# lists it; CHECKs never fail (-v shows them, and all allowed findings).
#
# Needs the kernel source that scripts/kernel.sh prepares ($KERNEL_SRC:
# scripts/checkpatch.pl, .rustfmt.toml) and Debian's rustfmt (rustfmt-web,
# matching the kernel's rustc) or else a rustfmt on PATH.
#
# Usage: lint-kernel.sh [-v]
. "$(dirname "$0")/lib.sh"

verbose=0
case "${1:-}" in
-v) verbose=1 ;;
'') ;;
*) die "usage: $0 [-v]" ;;
esac

checkpatch=$KERNEL_SRC/scripts/checkpatch.pl
[ -f "$checkpatch" ] && [ -f "$KERNEL_SRC/.rustfmt.toml" ] ||
	die "no kernel source in $KERNEL_SRC: run scripts/kernel.sh (make kernel) first"
allowlist=$COHORT_ROOT/scripts/lint-kernel.allow

passed=0
failed=0

# result NAME STATUS OUTPUT: print one check's line, and OUTPUT indented
# (on failure, or with -v).
result() {
	local name=$1 status=$2 output=$3
	if [ "$status" -eq 0 ]; then
		echo "ok $name"
		passed=$((passed + 1))
	else
		echo "not ok $name"
		failed=$((failed + 1))
	fi
	if [ -n "$output" ] && { [ "$status" -ne 0 ] || [ "$verbose" = 1 ]; }; then
		printf '%s\n' "$output" | sed 's/^/    /'
	fi
}

# judge NAME: read checkpatch --show-types output on stdin, print the
# findings to show, and exit 1 when NAME fails against the allowlist.
judge() {
	awk -v name="$1" -v verbose="$verbose" '
	FNR == NR {
		sub(/#.*/, "")
		if (NF >= 3 && $1 == name) {
			allowed[$2] = $3
		}
		next
	}
	{
		nblocks++
		block[nblocks] = $0
		if (match($0, /^(ERROR|WARNING|CHECK):[A-Z0-9_]+:/)) {
			split(substr($0, 1, RLENGTH - 1), f, ":")
			level[nblocks] = f[1]
			type[nblocks] = f[2]
			if (f[1] != "CHECK")
				count[f[2]]++
		} else if ($0 ~ /^(total|NOTE): /) {
			level[nblocks] = "SUMMARY"
		} else {
			level[nblocks] = "OTHER"	# checkpatch itself failed
		}
	}
	END {
		bad = 0
		for (t in count) {
			ok = (t in allowed) && count[t] == allowed[t] + 0
			if (ok)
				continue
			failing[t] = 1
			bad = 1
			if (t in allowed)
				printf "# %d %s found, the allowlist says %d\n\n",
				    count[t], t, allowed[t]
		}
		for (t in allowed)
			if (!(t in count)) {
				bad = 1
				printf "# no %s any more: drop it from scripts/lint-kernel.allow\n\n", t
			}
		for (i = 1; i <= nblocks; i++) {
			if (level[i] == "OTHER")
				bad = 1
			if (level[i] == "SUMMARY")
				continue
			if (level[i] == "OTHER" || failing[type[i]] || verbose)
				printf "%s\n\n", block[i]
		}
		exit bad
	}' "$allowlist" RS= -
}

# checkpatch_check NAME DIR ARGS...: run checkpatch in DIR and judge it.
checkpatch_check() {
	local name=$1 dir=$2 out status=0
	shift 2
	# checkpatch's own status counts CHECKs too: judge decides.
	out=$(cd "$dir" && { perl "$checkpatch" --strict --quiet --show-types \
		--color=never "$@" 2>&1 || true; } | judge "$name") || status=$?
	result "$name" "$status" "$out"
}

# 1. The series: each patch edits existing files only, and checkpatch runs
# with the kernel tree (cwd $KERNEL_SRC) for its tree checks.
cd "$COHORT_ROOT"
listed=$(grep -v -e '^#' -e '^$' patches/series | LC_ALL=C sort)
present=$(cd patches && ls -1 -- *.patch | LC_ALL=C sort)
result patches/series "$([ "$listed" = "$present" ] && echo 0 || echo 1)" \
	"$(diff <(echo "$listed") <(echo "$present") | sed -n 's/^< /listed, missing: /p; s/^> /not listed: /p')"
while read -r patch; do
	case "$patch" in '' | '#'*) continue ;; esac
	[ -f "patches/$patch" ] || continue
	created=$(grep -B1 '^new file mode' "patches/$patch" |
		sed -n 's|^diff --git a/\([^ ]*\) .*|\1|p' || true)
	if [ -n "$created" ]; then
		result "patches/$patch" 1 "$(printf 'creates %s: new kernel files belong in kernel/\n' $created)"
		continue
	fi
	checkpatch_check "patches/$patch" "$KERNEL_SRC" "$COHORT_ROOT/patches/$patch"
done <patches/series

# 2. The kernel files, by their paths in the kernel tree (checkpatch picks
# rules by path), with the kernel tree for its include checks.
while read -r file; do
	checkpatch_check "kernel/$file" "$COHORT_ROOT/kernel" --file --root="$KERNEL_SRC" "$file"
done < <(cd kernel && find . -name '*.[ch]' -printf '%P\n' | LC_ALL=C sort)
checkpatch_check Kconfig "$COHORT_ROOT" --file --no-tree Kconfig

# 3. rustfmt as the kernel's `make rustfmtcheck` runs it. Crate roots take
# their `mod` files along, so a file may show twice in the diff.
rustfmt=/usr/bin/rustfmt
[ -x "$rustfmt" ] || rustfmt=$(command -v rustfmt) ||
	die "no rustfmt (scripts/deps.sh installs rustfmt-web)"
mapfile -t rust_files < <(find kmsg popcorn gobelins rust/kernel -name '*.rs' | LC_ALL=C sort)
rustfmt_args=(--edition 2021 --config-path "$KERNEL_SRC/.rustfmt.toml")
status=0
out=$("$rustfmt" --check --color never "${rustfmt_args[@]}" "${rust_files[@]}" 2>&1) ||
	status=$?
if [ "$status" -ne 0 ] && [ "$verbose" = 0 ]; then
	unformatted=$(printf '%s\n' "$out" | sed -n "s|^Diff in $COHORT_ROOT/\(.*\):[0-9]*:\$|\1|p" |
		LC_ALL=C sort -u)
	out=$(printf 'not formatted: %s\nfix: %s %s FILES (-v shows the diff)' \
		"$(echo $unformatted)" "$rustfmt" "${rustfmt_args[*]}")
fi
result "rustfmt kmsg popcorn gobelins rust/kernel (${#rust_files[@]} files)" "$status" "$out"

echo "# $passed ok, $failed not ok"
[ "$failed" -eq 0 ]
