#!/bin/bash
# Many idle partitions (issue 19's own case): a fresh samsa from config.toml,
# TOPICS topics of 100 partitions (default 500: 50,000 partitions), a record
# in partition 0 of each (kcat), then clean stops, starts and a SIGKILL,
# each timed (a start until the port accepts; a stop until the process is
# reaped), with RSS and open fds. Run from the repository root after make
# build; needs kcat:
#   bench/partitions_case.sh [TOPICS]
set -eu
TOPICS=${1:-500}
D=$(mktemp -d)
PORT=19092
trap 'kill -9 $P 2>/dev/null; wait 2>/dev/null; rm -rf "$D"' EXIT
now() { date +%s.%N; }
start() {
	local t0
	t0=$(now)
	bin/samsa -config config.toml -listen 127.0.0.1:$PORT -data-dir "$D/data" >>"$D/log" 2>&1 &
	P=$!
	until (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; do sleep 0.005; done
	echo "$1: $(echo "$(now) - $t0" | bc) s"
}
stop() {
	local t0
	t0=$(now)
	kill -TERM $P
	wait $P || true
	echo "clean stop: $(echo "$(now) - $t0" | bc) s ($(grep 'logs closed' "$D/log" | tail -1 | grep -o 'rewritten=.*'))"
}
figures() { sleep 3; echo "  RSS $(awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$P/status) MiB, $(ls /proc/$P/fd | wc -l) fds"; }
start "first start"
t0=$(now)
names=()
for i in $(seq 1 "$TOPICS"); do names+=("case-$i"); done
for ((i = 0; i < TOPICS; i += 50)); do
	bin/samsactl -broker 127.0.0.1:$PORT -timeout 120s topics create "${names[@]:i:50}" --partitions 100 >/dev/null
done
for n in "${names[@]}"; do printf 'x\n' | kcat -b 127.0.0.1:$PORT -P -t "$n" -p 0 -X acks=all; done
echo "created $((TOPICS * 100)) partitions and wrote to $TOPICS in $(echo "$(now) - $t0" | bc) s"
figures
stop
start "start after a clean stop"
figures
stop
start "start after a clean stop"
kill -9 $P
wait $P 2>/dev/null || true
start "start after SIGKILL"
figures
stop
