#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# config-ipv6: the config scenario (27-config.sh) with IPv6 peers: every
# node boots from a configuration file naming [fd00:c0:ec::11],... and
# port 17778; kmsg listens and dials over IPv6, the mesh forms, pings and
# a migration work, and the identity cannot change under kmsg.
CONFIG_FAMILY=6 exec bash "$(dirname "$0")/27-config.sh"
