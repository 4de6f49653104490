#!/bin/bash
# librdkafka's own integration tests against a fresh samsa (README.md in
# this directory: getting, patching and building them). From the
# repository root after make build:
#   LIBRDKAFKA=/path/to/librdkafka tools/rdkafka-suite/run.sh [NNNN ...]
# Runs each test (default: the list below) with test-runner -L, prints
# PASSED/FAILED/SKIPPED per test and the failures' assertions. samsa runs
# from config.toml with 4 partitions per auto-created topic (librdkafka's
# "default" scenario) and the authorizer on, open to all where no ACL
# names a resource (the admin and auth tests need one). TEST_KAFKA_VERSION
# (default 4.0.0) sets which Kafka the tests expect; SAMSA_ADDR the
# broker's address (default 127.0.0.1:29392).
set -u
: "${LIBRDKAFKA:?set LIBRDKAFKA to a librdkafka tree built with make libs and tests/test-runner}"
ROOT=$(pwd)
D=$(mktemp -d)
ADDR=${SAMSA_ADDR:-127.0.0.1:29392}
trap 'kill $P 2>/dev/null; wait 2>/dev/null; rm -rf "$D"' EXIT
sed -e 's/^num_partitions = 1 /num_partitions = 4 /' config.toml >"$D/samsa.toml"
printf '\n[acl]\nenabled = true\nallow_everyone_if_no_acl_found = true\n' >>"$D/samsa.toml"
"${SAMSA:-bin/samsa}" -config "$D/samsa.toml" -listen $ADDR -data-dir "$D/data" >"$D/samsa.log" 2>&1 &
P=$!
sleep 1
mkdir -p "$D/kafka/bin"
cp tools/rdkafka-suite/kafka-topics.sh tools/rdkafka-suite/kafka-acls.sh "$D/kafka/bin/"
echo "bootstrap.servers=$ADDR" >"$D/test.conf"
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(0001 0002 0003 0005 0007 0008 0011 0012 0013 0014 0015 0016 0018 0019 0020
	0021 0022 0026 0029 0030 0031 0033 0034 0035 0036 0038 0039 0040 0041 0042 0044 0045 0048 0049
	0050 0051 0052 0055 0056 0057 0059 0060 0061 0063 0064 0065 0067 0068 0069 0070 0075 0076 0077
	0081 0082 0083 0084 0085 0086 0088 0089 0090 0091 0093 0094 0098 0099 0102 0103 0107 0109 0111
	0112 0114 0115 0118 0119 0122 0123 0125 0127 0129 0130 0137 0140)
pass=0 fail=0
for t in "${tests[@]}"; do
	(cd "$LIBRDKAFKA/tests" && RDKAFKA_TEST_CONF="$D/test.conf" TEST_MAX_RF=1 TEST_NO_JAVA=1 TEST_NO_SHARE=1 \
		TEST_KAFKA_VERSION=${TEST_KAFKA_VERSION:-4.0.0} KAFKA_PATH="$D/kafka" BROKERS=$ADDR SAMSACTL="$ROOT/bin/samsactl" \
		LD_LIBRARY_PATH=../src:../src-cpp timeout 900 ./test-runner -L "${t}_" >"$D/$t.log" 2>&1) 2>/dev/null
	# test-runner aborts at exit (a client teardown problem): judge by
	# the tests' own lines.
	out=$(sed 's/\x1b\[[0-9;]*m//g' "$D/$t.log")
	if grep -aq "ALL TESTS PASSED" <<<"$out"; then
		pass=$((pass + 1))
		echo "$t PASSED $(grep -aoE 'Test [0-9]{4}_[a-z0-9_]+ SKIPPED' <<<"$out" | tr '\n' ' ')"
	else
		fail=$((fail + 1))
		echo "$t FAILED"
		grep -aE -A2 '^### Test .* failed' <<<"$out" | head -12 | sed 's/^/    /'
	fi
done
echo "rdkafka-suite: $pass passed, $fail failed (librdkafka tests, against samsa at $ADDR)"
[ $fail -eq 0 ]
