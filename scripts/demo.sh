#!/usr/bin/env bash
# Sets up, builds, and runs bankml's main job on the bundled demo bank: generates twelve
# monthly snapshots of a synthetic bank (xlsx, as the seed system exported them), computes the
# features of every snapshot, trains the four models and scores every client, manager and agency.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bankml=target/release/bankml
[ -n "${CARGO_TARGET_DIR:-}" ] && bankml="$CARGO_TARGET_DIR/release/bankml"
if [ -z "$(ls -A data/raw 2>/dev/null | grep -v '^\.' || true)" ]; then
  "$bankml" generate
fi
"$bankml" features --all
"$bankml" train
"$bankml" score
echo
echo "Features: data/processed/<date>/ · models: data/models/ (bankml models list) · scores: data/scores/<date>/"
echo "Next: $bankml --help"
