#!/bin/bash
# franz-go's own integration suite (github.com/twmb/franz-go/pkg/kgo, the
# version go.mod pins) against a fresh samsa: producing, consuming, groups
# (classic and KIP-848, eager and cooperative, static members), transactions
# (TestTxnEtl: consume-transform-produce through rebalances), SCRAM over a
# SASL_PLAINTEXT listener. Share groups (KIP-932) are not served, and those
# tests skip themselves. Run from the repository root after make build:
#   tools/kgo-suite.sh [go test flags...]     e.g. -run TestTxnEtl
# SAMSA=path runs another samsa binary. About two minutes on 2 cores.
set -eu
D=$(mktemp -d)
trap 'kill $P 2>/dev/null; wait 2>/dev/null; rm -rf "$D"' EXIT
PLAIN=127.0.0.1:19392
SASL=127.0.0.1:19393
sed -e "s|^listen = \"127.0.0.1:9092\"$|listeners = \"PLAINTEXT://$PLAIN,SASL_PLAINTEXT://$SASL\"|" \
	-e 's|^\[admin\]$|[sasl]\nenabled_mechanisms = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"\n\n[admin]|' \
	config.toml >"$D/samsa.toml"
grep -q "SASL_PLAINTEXT://$SASL" "$D/samsa.toml" && grep -q '^\[sasl\]' "$D/samsa.toml" ||
	{ echo "kgo-suite.sh: config.toml has no listen or [admin] line to rewrite" >&2; exit 1; }
"${SAMSA:-bin/samsa}" -config "$D/samsa.toml" -data-dir "$D/data" \
	-add-scram 'SCRAM-SHA-256=[name=admin,password=admin-secret]' >"$D/log" 2>&1 &
P=$!
for _ in $(seq 100); do
	(exec 3<>/dev/tcp/${SASL%:*}/${SASL#*:}) 2>/dev/null && break
	kill -0 $P 2>/dev/null || { echo "kgo-suite.sh: samsa exited:" >&2; cat "$D/log" >&2; exit 1; }
	sleep 0.1
done
out="$D/kgo.out"
set +e
KGO_SEEDS=$PLAIN KGO_TEST_RF=1 KGO_TEST_SCRAM_SEEDS=$SASL KGO_TEST_SCRAM=admin:admin-secret:256 \
	go test -count=1 -v -timeout 20m "$@" github.com/twmb/franz-go/pkg/kgo >"$out" 2>&1
rc=$?
set -e
grep -E -- '^--- (FAIL|SKIP)' "$out" || true
grep -E -B3 -- '--- FAIL' "$out" | grep -v -- '^--$' | head -60 || true
echo "kgo-suite: $(grep -c -- '^--- PASS' "$out") passed, $(grep -c -- '^--- SKIP' "$out") skipped, $(grep -c -- '^--- FAIL' "$out") failed (top-level tests)"
if [ $rc -ne 0 ]; then
	tail -20 "$out"
	echo "kgo-suite: FAIL (samsa log: last lines)"; tail -20 "$D/log"
fi
exit $rc
