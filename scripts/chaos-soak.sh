#!/bin/sh
# Ten minutes of routed payments under faults, on a network this run builds (docs/stress.md, "A
# ten-minute chaos run"): six treasuries on a random topology (most payments routed), a node process
# killed every 30 s on average and restarted; with HOSTS=netns (root, Linux) every node in a network
# namespace of its own and a node cut off its peers every 20 s on average too. Not part of the suite.
#   scripts/chaos-soak.sh                      # lone treasuries
#   COMMITTEE=3 scripts/chaos-soak.sh          # committees of 3
#   HOSTS=netns SEED=11 scripts/chaos-soak.sh  # namespaces, kills and partitions, another seed
# Writes $OUT.json (the report) and $OUT.svg (its chart); exits as teechain stress does (0: verified).
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-chaos-soak}
if [ "${HOSTS:-local}" = netns ]; then
  set -- --hosts netns --chaos kill:30s,partition:20s "$@"
else
  set -- --chaos kill:30s "$@"
fi
exec npx tsx src/cli/main.ts stress --fresh --nodes "${NODES:-6}" --topology random --committee "${COMMITTEE:-1}" \
  --duration "${DURATION:-600}" --seed "${SEED:-7}" --out "$OUT.json" --chart "$OUT.svg" "$@"
