#!/usr/bin/env bash
# Sets up, builds and starts bankml's main job — the daemon — on the bundled demo bank.
# On its first start (empty data/) the daemon generates twelve monthly snapshots of a synthetic
# bank (xlsx, as the seed system exported them), trains the four models and runs a first
# benchmark; then it runs the jobs in jobs/*.yaml on their schedules and serves /metrics and
# the console, the API docs and the API on http://127.0.0.1:8001 until Ctrl-C (or SIGTERM).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bankml=target/release/bankml
[ -n "${CARGO_TARGET_DIR:-}" ] && bankml="$CARGO_TARGET_DIR/release/bankml"
echo "starting the daemon: http://127.0.0.1:8001/ (console) · /docs (API) · /metrics · Ctrl-C stops it"
echo "(trigger and reload over the API need a token: BANKML_API_TOKEN=… before this script)"
exec "$bankml" -v daemon
