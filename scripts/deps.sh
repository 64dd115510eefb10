#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install what building and running Cohort needs on Debian 12 (as root).
# Idempotent: a machine that has everything returns in a second.
. "$(dirname "$0")/lib.sh"

APT_PACKAGES=(
	linux-source-6.12 rustc-web rust-web-src
	clang lld llvm libclang-dev flex bison bc libelf-dev libssl-dev
	cpio busybox-static kmod qemu-system-x86 vde2 rsync gcc make
	# rustfmt matching rustc-web, for the kernel-side Rust (lint-kernel.sh)
	rustfmt-web
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || die "need root to install: ${missing[*]}"
	log deps "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# Host crates build with the machine's cargo (rustup's, on these machines);
# a bare Debian 12 gets Debian's, matching rustc-web.
if ! command -v cargo >/dev/null; then
	[ "$(id -u)" -eq 0 ] || die "need root to install cargo"
	log deps "no cargo: installing Debian's cargo-web, rustfmt-web, rust-web-clippy"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends cargo-web rustfmt-web rust-web-clippy >/dev/null
fi

# Debian's bindgen is too old for 6.12; take it from crates.io.
if ! "$BINDGEN" --version 2>/dev/null | grep -q "bindgen $BINDGEN_VERSION"; then
	log deps "building bindgen-cli $BINDGEN_VERSION (a few minutes)"
	cargo install --locked --quiet bindgen-cli --version "$BINDGEN_VERSION"
fi
log deps "ok: $(dpkg-query -W -f='linux-source-6.12 ${Version}' linux-source-6.12), $($KERNEL_RUSTC --version | cut -d' ' -f1-2), $("$BINDGEN" --version)"
