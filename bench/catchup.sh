#!/bin/bash
# A standby catching up: a pair from config.toml, the standby stopped,
# RECORDS (default 1,000,000) 1 KiB records produced to the primary with
# kcat (acks=1, one partition), then the standby started; prints how long
# until its data directory holds 98% of the primary's bytes. Run from the
# repository root after make build; needs kcat:
#   bench/catchup.sh [RECORDS]
# SAMSA=path runs another samsa binary (an A/B of two builds).
set -eu
RECORDS=${1:-1000000}
SAMSA=${SAMSA:-bin/samsa}
D=$(mktemp -d)
P1= P2=
trap 'kill $P1 $P2 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$D"' EXIT
. bench/pair_config.sh
pair_config "$D/n1.toml" 1 2 primary 127.0.0.1:19093 127.0.0.1:19192 127.0.0.1:19193
pair_config "$D/n2.toml" 2 1 standby 127.0.0.1:19193 127.0.0.1:19092 127.0.0.1:19093
yes "$(head -c 1023 /dev/zero | tr '\0' x)" | head -n "$RECORDS" >"$D/records"
"$SAMSA" -config "$D/n1.toml" -listen 127.0.0.1:19092 -data-dir "$D/d1" >"$D/l1" 2>&1 &
P1=$!
"$SAMSA" -config "$D/n2.toml" -listen 127.0.0.1:19192 -data-dir "$D/d2" >"$D/l2" 2>&1 &
P2=$!
sleep 3
kill $P2
wait $P2 2>/dev/null || true
P2=
kcat -P -b 127.0.0.1:19092 -t catchup -X acks=1 -X linger.ms=5 -X batch.size=1000000 -l "$D/records"
want=$(du -sb "$D/d1" | cut -f1)
t0=$(date +%s.%N)
"$SAMSA" -config "$D/n2.toml" -listen 127.0.0.1:19192 -data-dir "$D/d2" >>"$D/l2" 2>&1 &
P2=$!
until [ "$(du -sb "$D/d2" | cut -f1)" -ge $((want * 98 / 100)) ]; do sleep 0.05; done
echo "the standby caught up $(du -sh "$D/d2" | cut -f1) in $(echo "$(date +%s.%N) - $t0" | bc) s"
