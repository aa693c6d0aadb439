package kinesis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Publisher writes CloudEvents into a Kinesis stream, one per record, as
// the Event Streams Kinesis sink does. The simulator uses it to play calls
// through Kinesis. The partition key is random (Twilio's is undocumented),
// so a call's events spread over shards and arrive out of order, as they
// may in production.
type Publisher struct {
	c      *kinesis.Client
	stream string
}

// NewPublisher returns a Publisher for cfg's stream (Stream, Region,
// Endpoint are used).
func NewPublisher(ctx context.Context, cfg Config) (*Publisher, error) {
	if cfg.Stream == "" {
		return nil, errors.New("kinesis: no stream name")
	}
	c, err := newClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Publisher{c: c, stream: cfg.Stream}, nil
}

// Send puts the events, retrying the records Kinesis refuses (throttling)
// with backoff; it fails after about 10 s of refusals.
func (p *Publisher) Send(ctx context.Context, events [][]byte) error {
	pending := make([]types.PutRecordsRequestEntry, 0, len(events))
	for _, e := range events {
		var k [8]byte
		_, _ = rand.Read(k[:])
		pending = append(pending, types.PutRecordsRequestEntry{Data: e, PartitionKey: aws.String(hex.EncodeToString(k[:]))})
	}
	wait := 50 * time.Millisecond
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 {
			if attempt > 8 {
				return fmt.Errorf("kinesis: %d records still refused after %d attempts", len(pending), attempt)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			wait *= 2
		}
		for len(pending) > 0 {
			n := min(len(pending), 500) // PutRecords takes at most 500 records
			out, err := p.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: pending[:n]})
			if err != nil {
				return fmt.Errorf("kinesis: put records: %w", err)
			}
			var retry []types.PutRecordsRequestEntry
			for i, r := range out.Records {
				if r.ErrorCode != nil {
					retry = append(retry, pending[i])
				}
			}
			pending = append(retry, pending[n:]...)
			if len(retry) > 0 {
				break
			}
		}
	}
	return nil
}
