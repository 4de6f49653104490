package txn

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"
)

// unhex reads hex with spaces and comments ("# ..." to the end of a line).
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	var clean strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		clean.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The bytes below are spelled out from Kafka's TransactionLogKey.json and
// TransactionLogValue.json (design notes §4.2, §4.3), not produced by the
// codec: a change in how records are written breaks these tests, which is
// the point — __transaction_state is on disk and read by Kafka's tools.

func TestKeyFormat(t *testing.T) {
	want := unhex(t, `
		0000     # key version 0
		0003 747831 # TransactionalId "tx1"
	`)
	if got := txnKey("tx1"); !bytes.Equal(got, want) {
		t.Fatalf("key\n got %x\nwant %x", got, want)
	}
}

var goldenData = txnData{
	pid: 1000, prevPid: 900, nextPid: -1, epoch: 5, lastEpoch: -1, timeoutMs: 60000, state: Ongoing,
	parts:   map[TopicPartition]struct{}{tp("t", 1): {}, tp("t", 0): {}, tp("ab", 7): {}},
	startMs: 1700000000000, updateMs: 1700000000123, tv: 2,
}

func TestValueFormatV0(t *testing.T) {
	want := unhex(t, `
		0000                     # value version 0
		00000000000003e8         # ProducerId 1000
		0005                     # ProducerEpoch 5
		0000ea60                 # TransactionTimeoutMs 60000
		01                       # TransactionStatus Ongoing
		00000002                 # TransactionPartitions: 2 topics
		  0002 6162              #   Topic "ab"
		  00000001 00000007      #   PartitionIds [7]
		  0001 74                #   Topic "t"
		  00000002 00000000 00000001 # PartitionIds [0 1]
		0000018bcfe5687b         # TransactionLastUpdateTimestampMs
		0000018bcfe56800         # TransactionStartTimestampMs
	`) // v0 has no tagged fields: PreviousProducerId and the client TV are not written
	got := encodeValue(0, &goldenData)
	if !bytes.Equal(got, want) {
		t.Fatalf("v0\n got %x\nwant %x", got, want)
	}
	d, err := decodeValue(want)
	if err != nil {
		t.Fatal(err)
	}
	exp := goldenData.clone()
	exp.prevPid, exp.tv = -1, 0
	if !reflect.DeepEqual(d, exp) {
		t.Fatalf("decoded %+v\nwant %+v", d, exp)
	}
}

func TestValueFormatV1(t *testing.T) {
	want := unhex(t, `
		0001                     # value version 1 (flexible)
		00000000000003e8         # ProducerId 1000
		0005                     # ProducerEpoch 5
		0000ea60                 # TransactionTimeoutMs 60000
		01                       # TransactionStatus Ongoing
		03                       # TransactionPartitions: uvarint 2+1
		  03 6162                #   Topic: compact string "ab"
		  02 00000007            #   PartitionIds: compact array [7]
		  00                     #   no tagged fields
		  02 74                  #   Topic "t"
		  03 00000000 00000001   #   PartitionIds [0 1]
		  00                     #   no tagged fields
		0000018bcfe5687b         # TransactionLastUpdateTimestampMs
		0000018bcfe56800         # TransactionStartTimestampMs
		02                       # 2 tagged fields
		  00 08 0000000000000384 #   tag 0 PreviousProducerId 900
		  02 02 0002             #   tag 2 ClientTransactionVersion 2
	`) // NextProducerId -1 is the default: omitted
	got := encodeValue(1, &goldenData)
	if !bytes.Equal(got, want) {
		t.Fatalf("v1\n got %x\nwant %x", got, want)
	}
	d, err := decodeValue(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d, goldenData) {
		t.Fatalf("decoded %+v\nwant %+v", d, goldenData)
	}
}

func TestValueFormatEmpty(t *testing.T) {
	d := txnData{pid: 7, prevPid: -1, nextPid: 8, epoch: 0, timeoutMs: 100, state: Empty, startMs: -1, updateMs: 0}
	want := unhex(t, `
		0001 0000000000000007 0000 00000064 00
		00                       # TransactionPartitions null in Empty, as Kafka writes
		0000000000000000 ffffffffffffffff
		01 01 08 0000000000000008 # tag 1 NextProducerId 8
	`)
	if got := encodeValue(1, &d); !bytes.Equal(got, want) {
		t.Fatalf("empty v1\n got %x\nwant %x", got, want)
	}
	want0 := unhex(t, `0000 0000000000000007 0000 00000064 00 ffffffff 0000000000000000 ffffffffffffffff`)
	if got := encodeValue(0, &d); !bytes.Equal(got, want0) {
		t.Fatalf("empty v0\n got %x\nwant %x", got, want0)
	}
}

// FuzzReplay feeds arbitrary records to Replay: it must never panic, and
// the coordinator must load and serve afterwards whatever was accepted.
func FuzzReplay(f *testing.F) {
	f.Add(txnKey("a"), encodeValue(1, &goldenData))
	f.Add(txnKey("a"), encodeValue(0, &goldenData))
	prep := goldenData.clone()
	prep.state = PrepareCommit
	f.Add(txnKey("b"), encodeValue(1, &prep))
	f.Add(txnKey("c"), []byte(nil))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		e := newUnloadedEnv(t)
		_ = e.c.Replay(key, value)
		// A second record for the same key on top, with the value
		// truncated: the state must stay consistent either way.
		if len(value) > 0 {
			_ = e.c.Replay(key, value[:len(value)/2])
		}
		e.c.Loaded(1)
		e.initOK("fuzz-probe")
		// Whatever id was loaded must be describable and its init must
		// answer (success or an error), never hang.
		var k string
		if len(key) >= 4 {
			e.c.lock()
			for id := range e.c.txns {
				if id != "fuzz-probe" {
					k = id
				}
			}
			e.c.unlock()
		}
		if k != "" {
			e.c.initWait = 20 * time.Millisecond
			e.init(4, k, 1000, -1, -1)
		}
		e.c.Stats()
	})
}
