package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnIDExpiryPastOneBatch: the tombstones of expired transactional ids
// went to their __transaction_state partition as one batch, which past
// max.message.bytes (1 MiB) was refused at every sweep, so no id of the
// partition expired again. Like Kafka's removeExpiredTransactionalIds
// (hasRoomFor / flushRecordsBuilder) they now go in batches under it:
// 40 ids of 30 KB (1.2 MB of tombstones) all expire (found by review).
func TestTxnIDExpiryPastOneBatch(t *testing.T) {
	tb := startBroker(t, t.TempDir(), func(c *Config) {
		c.TxnStatePartitions = 1
		c.Txn.IDExpiration = 500 * time.Millisecond
		c.Txn.ExpireInterval = time.Second
	})
	c := tb.client()
	ctx := testCtx(t)
	const n = 40
	for i := range n {
		id := strings.Repeat("x", 30000) + string(rune('A'+i))
		init := kmsg.NewPtrInitProducerIDRequest()
		init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
		r, err := init.RequestWith(ctx, c)
		if err != nil || r.ErrorCode != 0 {
			t.Fatalf("InitProducerId %d: %v %+v", i, err, r)
		}
	}
	left := n
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		left = 0
		for _, k := range tb.b.txns.Stats().States {
			left += k
		}
		if left == 0 {
			return
		}
	}
	t.Fatalf("%d of %d transactional ids past transactional.id.expiration.ms never expired", left, n)
}
