package replica

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/segment"
)

// replicaBatch is a valid one-record batch at base, as a primary's log
// holds it.
func replicaBatch(base int64, value string) []byte {
	body := []byte{0}                    // record attributes
	body = binary.AppendVarint(body, 0)  // timestamp delta
	body = binary.AppendVarint(body, 0)  // offset delta
	body = binary.AppendVarint(body, -1) // null key
	body = binary.AppendVarint(body, int64(len(value)))
	body = append(body, value...)
	body = binary.AppendVarint(body, 0) // no headers
	rec := append(binary.AppendVarint(nil, int64(len(body))), body...)
	b := kmsg.RecordBatch{
		FirstOffset: base, Magic: 2, FirstTimestamp: 1000, MaxTimestamp: 1000,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: rec,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12)) // the batch length
	binary.BigEndian.PutUint32(raw[17:], segment.BatchCRC(raw))
	return raw
}

// A response whose second batch fails its CRC: the standby refuses it (the
// fetch fails and the link reconnects), the good batch before it is
// appended, and applyFetch returns only once that append is done with the
// response's bytes, which it appended without a copy: overwriting the
// response afterwards (the next fetch reuses the buffer) changes nothing
// in the log.
func TestApplyFetchRefusesBadCRC(t *testing.T) {
	p, l := testLog(t, Config{Role: RoleStandby, PeerID: 1, LagTimeMaxMs: 1000, MinInsyncReplicas: 2}, 2)

	good, bad := replicaBatch(0, "good"), replicaBatch(1, "bad")
	bad[len(bad)-1] ^= 0xff // a flipped byte in the record
	buf := append(append([]byte(nil), good...), bad...)
	resp := kmsg.NewPtrFetchResponse()
	rt := kmsg.NewFetchResponseTopic()
	rt.TopicID = [16]byte{1}
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.HighWatermark = 2
	rp.RecordBatches = buf
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)

	if _, err := p.applyFetch(resp, nil); err == nil || !bytes.Contains([]byte(err.Error()), []byte("CRC")) {
		t.Fatalf("a batch failing its CRC: %v, want a CRC error", err)
	}
	if end := l.Seg.EndOffset(); end != 1 {
		t.Fatalf("the copy ends at %d, want 1 (the good batch only)", end)
	}
	for i := range buf {
		buf[i] = 0xee // the next response overwrites the buffer
	}
	sl, err := l.Seg.Read(0, 1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, sl.Len)
	if _, err := sl.ReadAt(got, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	sl.Release()
	if !bytes.Equal(got, good) {
		t.Fatalf("the copy holds %x, want the good batch %x", got, good)
	}
}
