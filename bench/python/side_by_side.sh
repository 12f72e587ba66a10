#!/usr/bin/env bash
# bankml's daily benchmark and daily_benchmark.py side by side, alternating, on one project:
#
#   bench/python/side_by_side.sh PROJECT [BANKML] [ROUNDS] [PYTHON]
#
# Two comparisons, each ROUNDS (default 3) alternating rounds, every run a whole process
# measured by /usr/bin/time (wall, user + system CPU, peak RSS):
#   cold — nothing kept: bankml validates and cleans the exports, builds and keeps the features,
#          predicts; the script's default mode does the same work from the exports. bankml runs
#          in a copy of PROJECT (raw exports linked, models copied) whose store and scores are
#          emptied before each run.
#   warm — bankml's steady state in PROJECT itself: the features of every snapshot kept by this
#          bankml, the champion's churn scores stored by `bankml score` for the latest and the
#          matured snapshot (as daily scoring leaves them); the script's `--kept` mode.
# Prints each run, then medians and bankml / Python ratios. PROJECT's models and exports are
# only read; its store, scores and reports are written as bankml's jobs would.
set -euo pipefail
project=$(realpath "${1:?usage: side_by_side.sh PROJECT [BANKML] [ROUNDS] [PYTHON]}")
bankml=$(realpath "${2:-$(command -v bankml)}")
rounds=${3:-3}
python=${4:-/tmp/pybench/bin/python}
script=$(dirname "$(realpath "$0")")/daily_benchmark.py
out=$(mktemp -d)
cold=$out/cold
trap 'rm -rf "$out"' EXIT

# one LABEL COMMAND...: runs COMMAND, appends "LABEL wall cpu rss_kib" to $out/runs.
one() {
  local label=$1
  shift
  /usr/bin/time -f "%e %U %S %M" -o "$out/time" "$@" >"$out/last.log" 2>&1 || {
    echo "$label failed:" >&2
    tail -20 "$out/last.log" >&2
    exit 1
  }
  read -r wall user system rss <"$out/time"
  cpu=$(python3 -c "print(round($user + $system, 2))")
  echo "$label $wall $cpu $rss" | tee -a "$out/runs"
}

echo "preparing: features of every snapshot kept, churn scores stored (warm), a cold copy" >&2
(cd "$project" && "$bankml" features --all >/dev/null 2>&1)
(cd "$project" && "$bankml" score >/dev/null 2>&1)
(cd "$project" && "$bankml" run daily-benchmark >"$out/warmup.log" 2>&1)
report=$(grep -o 'report: .*' "$out/warmup.log" | tail -1 | cut -d' ' -f2)
matured=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['outcome']['summary']['churn']['evaluated_snapshot'])" "$project/$report")
(cd "$project" && "$bankml" score --snapshot "$matured" >/dev/null 2>&1)
mkdir -p "$cold/data"
cp -r "$project/config" "$project/jobs" "$cold/"
ln -s "$project/data/raw" "$cold/data/raw"
cp -r "$project/data/models" "$cold/data/"

for round in $(seq 1 "$rounds"); do
  rm -rf "$cold/data/processed" "$cold/data/scores" "$cold/reports" "$cold/data/history.sqlite"
  (cd "$cold" && one "bankml-cold" "$bankml" run daily-benchmark)
  one "python-raw" "$python" "$script" --dir "$cold"
  (cd "$project" && one "bankml-warm" "$bankml" run daily-benchmark)
  one "python-kept" "$python" "$script" --dir "$project" --kept
done

python3 - "$out/runs" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    label, wall, cpu, rss = line.split()
    runs.setdefault(label, []).append((float(wall), float(cpu), int(rss) / 1024 / 1024))
median = {k: [statistics.median(v[i] for v in vs) for i in range(3)] for k, vs in runs.items()}
print(f"\n{'medians':<12} {'wall s':>8} {'CPU s':>8} {'peak GiB':>9}")
for label, (wall, cpu, rss) in median.items():
    print(f"{label:<12} {wall:>8.2f} {cpu:>8.2f} {rss:>9.2f}")
for ours, theirs in [("bankml-cold", "python-raw"), ("bankml-warm", "python-kept"), ("bankml-warm", "python-raw")]:
    a, b = median[ours], median[theirs]
    print(f"{ours} / {theirs}: wall {a[0] / b[0]:.2f}, CPU {a[1] / b[1]:.2f}, peak RSS {a[2] / b[2]:.2f}")
EOF
