#!/usr/bin/env bash
# Runs every test: unit tests beside the code and integration tests that drive the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-build --tests
cargo test --locked "$@"
