package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The soak's consumers: group members on the plain topic that join and
// leave, and one member reading the retention topic.

// soakMembers are the group members on the plain topic. Owned by the
// churn goroutine.
type soakMembers struct {
	k       *soak
	quit    chan struct{}
	members []*soakMember
	growing bool
}

type soakMember struct {
	cl   *kgo.Client
	quit chan struct{}
	done chan struct{}
}

// churn starts a member at once, then every ChurnEvery starts another
// (up to MaxMembers) or stops the oldest (down to one), and stops them
// all when quit is closed.
func (m *soakMembers) churn() {
	defer func() {
		for _, mb := range m.members {
			m.stop(mb)
		}
	}()
	m.growing = true
	m.add()
	t := time.NewTicker(m.k.s.ChurnEvery)
	defer t.Stop()
	for {
		select {
		case <-m.quit:
			return
		case <-t.C:
		}
		if len(m.members) >= m.k.s.MaxMembers {
			m.growing = false
		} else if len(m.members) <= 1 {
			m.growing = true
		}
		if m.growing {
			m.add()
		} else {
			m.stop(m.members[0])
			m.members = m.members[1:]
		}
		m.k.mu.Lock()
		m.k.members = len(m.members)
		m.k.mu.Unlock()
	}
}

func (m *soakMembers) add() {
	k := m.k
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(k.pair.Addrs()...),
		kgo.ConsumerGroup(k.topics[soakPlain]+"-readers"),
		kgo.ConsumeTopics(k.topics[soakPlain]),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.RetryTimeout(30*time.Second),
		kgo.MetadataMinAge(max(k.s.MetadataMinAge, 10*time.Millisecond)),
		kgo.WithLogger(k.tally.named("consume: ")),
	)
	if err != nil {
		k.fail(fmt.Errorf("cannot create group member: %w", err))
		return
	}
	mb := &soakMember{cl: cl, quit: make(chan struct{}), done: make(chan struct{})}
	m.members = append(m.members, mb)
	k.mu.Lock()
	k.rep.MembersStarted++
	k.members = len(m.members)
	k.mu.Unlock()
	go func() {
		defer close(mb.done)
		k.poll(cl, mb.quit, func(r *kgo.Record) {
			if id, _, ok := parseSeqValue(r.Value); ok {
				k.groupRead.saw(id)
			}
		})
	}()
}

// stop ends a member's goroutine and closes its client (leaving the
// group).
func (m *soakMembers) stop(mb *soakMember) {
	close(mb.quit)
	<-mb.done
	mb.cl.Close()
}

// poll polls cl until quit is closed, calling each for every record.
func (k *soak) poll(cl *kgo.Client, quit chan struct{}, each func(*kgo.Record)) {
	for {
		select {
		case <-quit:
			return
		default:
		}
		pctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachError(func(_ string, _ int32, err error) { k.tally.named("consume: ").add(err) })
		fs.EachRecord(each)
	}
}

// readRetention reads the retention topic with one group member until
// quit is closed.
func (k *soak) readRetention(quit chan struct{}) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(k.pair.Addrs()...),
		kgo.ConsumerGroup(k.topics[soakRetention]+"-readers"),
		kgo.ConsumeTopics(k.topics[soakRetention]),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.RetryTimeout(30*time.Second),
		kgo.MetadataMinAge(max(k.s.MetadataMinAge, 10*time.Millisecond)),
		kgo.WithLogger(k.tally.named("consume: ")),
	)
	if err != nil {
		k.fail(fmt.Errorf("cannot create the retention reader: %w", err))
		return
	}
	defer cl.Close()
	k.poll(cl, quit, func(*kgo.Record) { k.retentionRead.Add(1) })
}
