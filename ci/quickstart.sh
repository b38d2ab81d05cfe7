#!/usr/bin/env bash
# Quickstart: installs whatever is missing (ci/setup.sh, which also builds), then runs
# `sluice quickstart`: two throwaway MariaDB servers on free loopback ports, a seeded shop
# database with live writes, and a one-shot job between them (consistent dump → sorted import
# → binlog stream from the dump's exact position → online checksum at a sync point of the
# running stream). Everything it starts stops when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/setup.sh >/dev/null
echo "== quickstart: set-up done"
SLUICE_LOG=${SLUICE_LOG:-warn} target/debug/sluice quickstart
