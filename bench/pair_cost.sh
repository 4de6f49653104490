#!/bin/bash
# What the standby costs (issue 18): one node alone and a pair, from
# config.toml, taking turns ROUNDS times (alone, pair, pair, alone, ...:
# a drift of this box over the run is charged to neither), each running
# produce (1 KiB acks=all) and e2e (10,000 1 KiB records/s acks=all);
# prints each run's figures and the medians' ratios. Run from the
# repository root after make build:
#   bench/pair_cost.sh [ROUNDS]
#   STANDBY_DIR=/mnt/tmpfs bench/pair_cost.sh   # the standby's disk apart
set -eu
ROUNDS=${1:-3}
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
run() { # alone|pair round
	local env=()
	[ "$1" = alone ] && env=(ALONE=1)
	local p e
	# The page cache's writeback of one run must not land on the next.
	sync
	sleep 2
	p=$(env "${env[@]}" bench/pair.sh false -acks all -records 600000 2>&1 | grep -m1 'rec/s' | sed -E 's/.*produce [0-9,]+ rec\/s ([0-9.]+) MiB\/s.*/\1/')
	sync
	sleep 2
	e=$(env "${env[@]}" WORKLOAD=e2e bench/pair.sh false -rate 10000 -records 50000 2>&1 | grep -m1 'latency p50' | sed -E 's/.*latency p50 ([0-9.]+) p99 ([0-9.]+) p99.9 ([0-9.]+).*/\1 \2 \3/')
	echo "$1 $p $e" | tee -a "$OUT"
}
echo "mode produce_MiB/s e2e_p50 e2e_p99 e2e_p99.9 (ms)"
for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then run alone; run pair; else run pair; run alone; fi
done
med() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
for col in 2 4 5; do
	a=$(awk -v c=$col '$1=="alone" {print $c}' "$OUT" | med)
	p=$(awk -v c=$col '$1=="pair" {print $c}' "$OUT" | med)
	name=$(echo "x produce_MiB/s x e2e_p99 e2e_p99.9" | cut -d' ' -f$col)
	echo "median $name: alone $a, pair $p, pair/alone $(echo "scale=2; $p / $a" | bc)"
done
