#!/usr/bin/env bash
# Sets up, builds, and runs bankml's main job on the bundled demo bank: generates twelve
# monthly snapshots of a synthetic bank (xlsx, as the seed system exported them) and computes
# the client, manager and agency features of every snapshot.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bankml=target/release/bankml
[ -n "${CARGO_TARGET_DIR:-}" ] && bankml="$CARGO_TARGET_DIR/release/bankml"
if [ -z "$(ls -A data/raw 2>/dev/null | grep -v '^\.' || true)" ]; then
  "$bankml" generate
fi
"$bankml" features --all
echo
echo "Features are in data/processed/<date>/ (clients, managers, agencies .parquet; cleaning.json)."
echo "Next: $bankml --help"
