package bolt_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"callrec"
)

// BenchmarkCreateRecording measures one INUM allocation plus record and
// index writes: one fsynced commit per op.
func BenchmarkCreateRecording(b *testing.B) {
	x := newIndex(b)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		_, err := x.CreateRecording(ctx, func(inum callrec.INUM) *callrec.Recording {
			return basicRecording(inum, t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprint("CA", i), fmt.Sprint("MZ", i))
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutRecordings measures an accounting checkpoint of 100 active,
// fully populated recordings in one transaction.
func BenchmarkPutRecordings(b *testing.B) {
	const batch = 100
	x := newIndex(b)
	ctx := context.Background()
	rs := make([]*callrec.Recording, 0, batch)
	for i := range batch {
		r, err := x.CreateRecording(ctx, func(inum callrec.INUM) *callrec.Recording {
			r := fullRecording(inum, t0.Add(time.Duration(i)*time.Second))
			r.Stream.CallSID = fmt.Sprint("CA", i)
			r.Stream.StreamSID = fmt.Sprint("MZ", i)
			r.State = callrec.StateRecording
			return r
		})
		if err != nil {
			b.Fatal(err)
		}
		rs = append(rs, r)
	}
	n := int64(0)
	for b.Loop() {
		n++
		for _, r := range rs {
			r.Accounting.Messages.MediaSeen = n
			r.UpdatedAt = t0.Add(time.Duration(n) * time.Second)
		}
		if err := x.PutRecordings(ctx, rs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/record")
}
