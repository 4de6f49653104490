#!/bin/bash
# The latency tail (issue 18): one broker from config.toml with its [admin]
# listener on, then samsa-bench e2e (10,000 1 KiB records/s, acks=all)
# against it, printing the broker's stage figures. Run from the repository
# root after make build:
#   bench/tail.sh [samsa-bench flags...]
# e.g. bench/tail.sh -rounds 3              # alone
#      bench/tail.sh -rounds 3 -bulk 100    # under a 100 MiB/s bulk load
# SAMSA=path runs another samsa binary (an A/B of two builds).
set -eu
D=$(mktemp -d)
trap 'kill $P 2>/dev/null; wait 2>/dev/null; rm -rf "$D"' EXIT
sed -e 's/^listen = ""$/listen = "127.0.0.1:19644"/' config.toml >"$D/samsa.toml"
grep -q 19644 "$D/samsa.toml" || { echo "tail.sh: config.toml has no [admin] listen line to set" >&2; exit 1; }
"${SAMSA:-bin/samsa}" -config "$D/samsa.toml" -listen 127.0.0.1:19092 -data-dir "$D/data" >"$D/log" 2>&1 &
P=$!
sleep 1
bin/samsa-bench e2e -target 127.0.0.1:19092 -target-pid $P -metrics 127.0.0.1:19644 -rate 10000 -records 100000 "$@"
