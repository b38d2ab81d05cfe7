#!/usr/bin/env bash
# Installs what Sluice's tests, benches and quickstart need, and nothing that is already there.
# Idempotent; meant for a Debian 12 machine as root (or with sudo). Then builds the workspace.
#
#   apt:  mariadb-server mariadb-client (the test servers), mydumper percona-toolkit sysbench
#         (the peers the benches compare against)
#   pip:  moto[server] (an S3-compatible endpoint), in its own venv under /opt/sluice/moto
#   rust: the toolchain must already be there (cargo, clippy, rustfmt)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== setup: %s\n' "$*"; }
fail() { printf 'setup failed: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || fail "not root and no sudo: run ci/setup.sh as root"
  SUDO="sudo"
fi

step "Rust toolchain"
command -v cargo >/dev/null || fail "cargo not found: install Rust (rustup) with the clippy and rustfmt components"
cargo clippy --version >/dev/null 2>&1 || fail "cargo clippy missing: rustup component add clippy"
cargo fmt --version >/dev/null 2>&1 || fail "cargo fmt missing: rustup component add rustfmt"
cargo --version

step "Debian packages"
wanted=(mariadb-server mariadb-client mydumper percona-toolkit sysbench)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# moto's venv needs python3-venv (Debian's python refuses a system-wide pip install).
if ! command -v moto_server >/dev/null && [ ! -x /opt/sluice/moto/bin/moto_server ]; then
  python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || fail "apt-get update"
  # policy-rc.d keeps the package's own MariaDB service from starting on port 3306.
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]}"
else
  echo "all present: ${wanted[*]}"
fi
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || fail "mariadbd not found after install"

step "moto (S3 endpoint)"
if command -v moto_server >/dev/null; then
  echo "present: $(command -v moto_server)"
elif [ -x /opt/sluice/moto/bin/moto_server ]; then
  echo "present: /opt/sluice/moto/bin/moto_server"
else
  $SUDO python3 -m venv /opt/sluice/moto || fail "python3 -m venv /opt/sluice/moto"
  $SUDO /opt/sluice/moto/bin/pip install -q 'moto[server]' || fail "pip install moto[server]"
fi
if ! command -v moto_server >/dev/null; then
  $SUDO ln -sf /opt/sluice/moto/bin/moto_server /usr/local/bin/moto_server || fail "link moto_server"
fi

step "build"
cargo build --workspace --all-targets --locked || fail "cargo build"
echo "setup done"
