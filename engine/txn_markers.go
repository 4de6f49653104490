package engine

// Transaction markers on partitions: the transaction coordinator's marker
// writer and WriteTxnMarkers (admin aborts) both go through writeMarker.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/segment"
)

// markerCode maps a marker append's error to the Kafka code
// WriteTxnMarkers answers with.
func markerCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, segment.ErrProducerFenced):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, segment.ErrCoordinatorFenced):
		return kerr.TransactionCoordinatorFenced.Code
	case errors.Is(err, errNotEnoughReplicas):
		return kerr.NotEnoughReplicas.Code
	}
	return errCode(err)
}

// writeMarker appends the commit or abort marker of (pid, epoch) to p,
// fsynced as acks=all records are (the durability policy) and, while a
// standby is in sync, on the standby too, then settles the group offsets
// the transaction committed when p is a partition of __consumer_offsets.
// done gets a Kafka error code, on a goroutine of its own.
func (b *Broker) writeMarker(p *partition, pid int64, epoch int16, coordEpoch int32, commit bool, done func(code int16)) {
	if b.pair.IsStandby() {
		go done(kerr.NotLeaderForPartition.Code)
		return
	}
	minISR := p.t.policy.Load().minISR
	if b.pair.Replicated() && minISR > b.inSyncReplicas(p) {
		go done(kerr.NotEnoughReplicas.Code)
		return
	}
	finish := func(code int16) {
		if code == 0 && p.t.name == offsetsTopic {
			b.groups.CompleteTxn(p.idx, pid, commit)
		}
		done(code)
	}
	// The marker's offset, known once AppendMarker returns, which may be
	// after its write completed.
	at := make(chan int64, 1)
	off, err := p.log.AppendMarker(pid, epoch, coordEpoch, commit, b.syncFor(-1), func(err error) {
		go func() {
			off := <-at
			if err != nil || !b.pair.Replicated() {
				finish(markerCode(err))
				return
			}
			p.replica.WaitForStandby(off+1, minISR, func(code int16) { go finish(code) })
		}()
	})
	if err != nil {
		go done(markerCode(err))
		return
	}
	at <- off
}
