#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Everything a cluster needs, in order, each step cached: packages and
# bindgen, the kernel, the modules, the initramfs and the host CLI.
. "$(dirname "$0")/lib.sh"

"$COHORT_ROOT/scripts/deps.sh"
"$COHORT_ROOT/scripts/kernel.sh"
"$COHORT_ROOT/scripts/modules.sh"
"$COHORT_ROOT/scripts/initramfs.sh"
log cli "building the cohort host CLI"
cargo build --quiet --release -p cohort --manifest-path "$COHORT_ROOT/Cargo.toml"
