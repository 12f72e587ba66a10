#!/usr/bin/env bash
# Installs what building bankml needs on a fresh Debian machine, then builds it (release).
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
tests=0
# binutils and patchelf: scripts/install.sh strips the binary and points it at its library.
packages=(cmake ninja-build clang libclang-dev binutils patchelf)
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    # The tests' real peers: promtool (Debian package prometheus) checks /metrics and the
    # rules, Alertmanager receives alerts, Chromium renders the HTML reports; an SMTP server
    # (aiosmtpd, from PyPI) receives the emails; systemd-analyze checks the shipped unit.
    --tests) packages+=(prometheus prometheus-alertmanager chromium systemd); tests=1 ;;
    *) echo "usage: scripts/setup.sh [--no-build] [--tests]" >&2; exit 2 ;;
  esac
done
# System packages the build needs: XGBoost (built from source by the xgb crate) needs cmake,
# ninja and clang with libclang for its bindings.
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "$tests" -eq 1 ] && ! python3 -c "import aiosmtpd" >/dev/null 2>&1; then
  echo "installing aiosmtpd (SMTP server for the email tests)"
  python3 -m pip install -q aiosmtpd 2>/dev/null || python3 -m pip install -q --break-system-packages aiosmtpd
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo (Rust) is not installed; see https://rustup.rs" >&2
  exit 1
fi

if [ "$build" -eq 1 ]; then
  cargo build --release --locked
fi
