#!/usr/bin/env bash
# The whole test run, as CI runs it: set-up, formatting, lints, then every test against real
# MariaDB servers and a real S3 endpoint that the test harness starts and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/setup.sh

echo; echo "== cargo fmt --check"
cargo fmt --all --check

echo; echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo; echo "== cargo test"
cargo test --workspace --locked --no-fail-fast
