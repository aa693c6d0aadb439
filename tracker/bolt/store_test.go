package bolt_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"callrec/tracker/bolt"
	"callrec/tracker/streams"
)

func open(t *testing.T, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIntentsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tracker.db")
	s := open(t, path)
	t0 := time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)
	a := streams.Intent{Order: streams.Order{Key: "start:a", Kind: streams.Start, Name: "a"}, State: streams.Pending, Created: t0}
	b := streams.Intent{Order: streams.Order{Key: "start:b", Kind: streams.Start, Name: "b"}, State: streams.Pending, Created: t0.Add(time.Second)}
	for _, in := range []streams.Intent{b, a} {
		if ok, err := s.Add(ctx, in); err != nil || !ok {
			t.Fatalf("Add %s = %v, %v", in.Key, ok, err)
		}
	}
	if ok, err := s.Add(ctx, a); err != nil || ok {
		t.Fatalf("second Add of %s = %v, %v; want false", a.Key, ok, err)
	}
	a.State, a.Outcome, a.StreamSID = streams.Done, "started", "MZ1"
	if err := s.Put(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.PutContact(ctx, "WT1", []byte(`{"task_sid":"WT1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	t.Cleanup(func() { s.Close() })
	got, ok, err := s.Get(ctx, "start:a")
	if err != nil || !ok {
		t.Fatalf("Get = %v, %v", ok, err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("intent after reopen (-want +got):\n%s", diff)
	}
	pending, err := s.Pending(ctx)
	if err != nil || len(pending) != 1 || pending[0].Key != "start:b" {
		t.Errorf("Pending = %+v, %v; want only start:b", pending, err)
	}
	cs, err := s.Contacts(ctx)
	if err != nil || string(cs["WT1"]) != `{"task_sid":"WT1"}` {
		t.Errorf("Contacts = %v, %v", cs, err)
	}
	if err := s.DeleteContact(ctx, "WT1"); err != nil {
		t.Fatal(err)
	}
	if cs, _ := s.Contacts(ctx); len(cs) != 0 {
		t.Errorf("contact not deleted: %v", cs)
	}
}
