package engine

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"samsa/segment"
)

// errCode maps a segment error to the Kafka error code a client expects.
func errCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, segment.ErrCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, segment.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, segment.ErrBatchTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, segment.ErrInvalidTimestamp):
		return kerr.InvalidTimestamp.Code
	case errors.Is(err, segment.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, segment.ErrProducerFenced):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, segment.ErrInvalidTxnState):
		return kerr.InvalidTxnState.Code
	case errors.Is(err, segment.ErrCoordinatorFenced):
		return kerr.TransactionCoordinatorFenced.Code
	case errors.Is(err, segment.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, segment.ErrLogClosed):
		return kerr.UnknownTopicOrPartition.Code
	}
	return kerr.KafkaStorageError.Code
}
