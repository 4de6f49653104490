package txn

import (
	"regexp"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeTransactions v0 and ListTransactions v0–2
// (docs/design/transactions.md §3.5, §3.6): answered from memory, at once.

// DescribeTransactions serves DescribeTransactions and answers through
// respond exactly once. Any goroutine.
func (c *Coordinator) DescribeTransactions(r *kmsg.DescribeTransactionsRequest, respond Respond) {
	resp := r.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	c.lock()
	defer c.unlock()
	gate := c.gateLocked()
	for _, id := range r.TransactionalIDs {
		s := kmsg.NewDescribeTransactionsResponseTransactionState()
		s.TransactionalID = id
		t := c.txns[id]
		switch {
		case id == "":
			s.ErrorCode = kerr.InvalidRequest.Code
		case gate != 0:
			s.ErrorCode = gate
		case t == nil:
			s.ErrorCode = kerr.TransactionalIDNotFound.Code
		default:
			s.State = t.state.String()
			s.TimeoutMillis = t.timeoutMs
			s.StartTimestamp = t.startMs
			s.ProducerID = t.pid
			s.ProducerEpoch = t.epoch
			for _, tp := range t.sortedParts() {
				if n := len(s.Topics); n == 0 || s.Topics[n-1].Topic != tp.Topic {
					s.Topics = append(s.Topics, kmsg.DescribeTransactionsResponseTransactionStateTopic{Topic: tp.Topic})
				}
				last := &s.Topics[len(s.Topics)-1]
				last.Partitions = append(last.Partitions, tp.Partition)
			}
		}
		resp.TransactionStates = append(resp.TransactionStates, s)
	}
	c.later(func() { respond(resp) })
}

// ListTransactions serves ListTransactions v0–2 with Kafka's filters:
// states (unknown names are reported and match nothing), producer ids,
// v1 DurationFilter (Kafka's code applies it to every state using the
// start timestamp, so ids with no transaction, start -1, pass it; samsa
// does the same), and v2 TransactionalIDPattern (an RE2 expression that
// must match the whole id, as Java's Matcher.matches; INVALID_REGULAR_EXPRESSION
// if it does not compile). Answers through respond exactly once. Any
// goroutine.
func (c *Coordinator) ListTransactions(r *kmsg.ListTransactionsRequest, respond Respond) {
	resp := r.ResponseKind().(*kmsg.ListTransactionsResponse)
	c.lock()
	defer c.unlock()
	defer c.later(func() { respond(resp) })
	code := c.gateLocked()
	if code != 0 && code != kerr.NotCoordinator.Code {
		resp.ErrorCode = code
		return
	}
	// A node that coordinates nothing (a standby) lists nothing, without
	// an error, as a Kafka broker that owns no __transaction_state
	// partition: the admin client asks every broker, and fails on any
	// other code.
	none := code == kerr.NotCoordinator.Code
	var re *regexp.Regexp
	if r.Version >= 2 && r.TransactionalIDPattern != nil && *r.TransactionalIDPattern != "" {
		var err error
		if re, err = regexp.Compile("^(?:" + *r.TransactionalIDPattern + ")$"); err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return
		}
	}
	states := map[State]bool{}
	for _, name := range r.StateFilters {
		if s, ok := stateByName(name); ok {
			states[s] = true
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
		}
	}
	pids := map[int64]bool{}
	for _, p := range r.ProducerIDFilters {
		pids[p] = true
	}
	duration := int64(-1)
	if r.Version >= 1 {
		duration = r.DurationFilterMillis
	}
	now := c.nowMs()
	var ids []string
	for id, t := range c.txns {
		switch {
		case none, t.state == Dead:
		case len(pids) > 0 && !pids[t.pid]:
		case len(r.StateFilters) > 0 && !states[t.state]:
		case duration >= 0 && now-t.startMs <= duration:
		case re != nil && !re.MatchString(id):
		default:
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		t := c.txns[id]
		s := kmsg.NewListTransactionsResponseTransactionState()
		s.TransactionalID, s.ProducerID, s.TransactionState = id, t.pid, t.state.String()
		resp.TransactionStates = append(resp.TransactionStates, s)
	}
}
