package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// refSearch is the reference: a brute-force filter, sort and page over a
// slice, written independently of the store's encoding.
func refSearch(all []Interaction, q Query) Result {
	var hits []Interaction
	qd := ""
	for _, r := range q.Number {
		if r >= '0' && r <= '9' {
			qd += string(r)
		}
	}
	numMatch := func(n string) bool {
		d := ""
		for _, r := range n {
			if r >= '0' && r <= '9' {
				d += string(r)
			}
		}
		if w := len(qd) + NumberSlack; len(d) > w {
			d = d[len(d)-w:]
		}
		return strings.Contains(d, qd)
	}
	for _, in := range all {
		d := time.Duration(in.DurationMS) * time.Millisecond
		switch {
		case !q.From.IsZero() && in.Start.Before(q.From),
			!q.To.IsZero() && !in.Start.Before(q.To),
			q.Agent != "" && !slices.Contains(in.Agents, q.Agent),
			q.Number != "" && !numMatch(in.From) && !numMatch(in.To),
			q.Queue != "" && in.Queue != q.Queue,
			q.Direction != "" && in.Direction != q.Direction,
			q.CallSID != "" && in.CallSID != q.CallSID,
			q.TaskSID != "" && in.TaskSID != q.TaskSID,
			q.INUM != "" && !slices.Contains(in.INUMs, q.INUM),
			q.MinDuration > 0 && d < q.MinDuration.Truncate(time.Millisecond),
			q.MaxDuration > 0 && d > q.MaxDuration.Truncate(time.Millisecond),
			q.Status != "" && in.Status != q.Status:
			continue
		}
		ok := true
		for _, t := range q.Tags {
			ok = ok && slices.Contains(in.Tags, t)
		}
		if ok {
			hits = append(hits, in)
		}
	}
	byStart := func(a, b Interaction) int { return cmp.Or(b.Start.Compare(a.Start), cmp.Compare(a.ID, b.ID)) }
	byDur := func(a, b Interaction) int {
		return cmp.Or(cmp.Compare(b.DurationMS, a.DurationMS), cmp.Compare(a.ID, b.ID))
	}
	switch q.Sort {
	case "", "start":
		slices.SortFunc(hits, byStart)
	case "-start":
		slices.SortFunc(hits, func(a, b Interaction) int { return byStart(b, a) })
	case "duration":
		slices.SortFunc(hits, byDur)
	case "-duration":
		slices.SortFunc(hits, func(a, b Interaction) int { return byDur(b, a) })
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	lo, hi := min(q.Offset, len(hits)), min(q.Offset+limit, len(hits))
	return Result{Items: hits[lo:hi], Total: len(hits)}
}

func loadGenerated(t testing.TB, g genConfig) (*Store, []Interaction) {
	t.Helper()
	s := openTest(t.(*testing.T))
	all := make([]Interaction, g.n)
	for i := range all {
		all[i] = g.gen(i)
	}
	for i := 0; i < len(all); i += 1000 {
		if err := s.PutMany(context.Background(), all[i:min(i+1000, len(all))]); err != nil {
			t.Fatal(err)
		}
	}
	return s, all
}

// testQueries builds filters alone and combined from values of the data.
func testQueries(g genConfig, all []Interaction) map[string]Query {
	a, b := all[len(all)/3], all[2*len(all)/3]
	day := g.end.Add(-48 * time.Hour)
	cust := func(in Interaction) string {
		if in.Direction == "inbound" {
			return in.From
		}
		return in.To
	}
	qs := map[string]Query{
		"all":              {},
		"time range":       {From: day, To: day.Add(24 * time.Hour)},
		"from only":        {From: g.end.Add(-12 * time.Hour)},
		"to only":          {To: g.end.Add(-g.span + 12*time.Hour)},
		"agent":            {Agent: a.Agents[0]},
		"agent + time":     {Agent: a.Agents[0], From: a.Start.Add(-72 * time.Hour), To: a.Start.Add(time.Hour)},
		"number last 4":    {Number: cust(a)[len(cust(a))-4:]},
		"number middle":    {Number: cust(b)[len(cust(b))-6 : len(cust(b))-3]},
		"number formatted": {Number: "(" + cust(a)[len(cust(a))-7:len(cust(a))-4] + ") " + cust(a)[len(cust(a))-4:]},
		"number did":       {Number: g.did(1)[len(g.did(1))-4:], Limit: 10, Offset: 5},
		"number + dir":     {Number: cust(a)[len(cust(a))-3:], Direction: "outbound", Sort: "duration"},
		"queue":            {Queue: a.Queue},
		"queue + dir":      {Queue: a.Queue, Direction: "inbound", From: day, Sort: "-start"},
		"direction":        {Direction: "outbound"},
		"direction other":  {Direction: "sideways"},
		"call sid":         {CallSID: b.CallSID},
		"task sid":         {TaskSID: a.TaskSID},
		"inum":             {INUM: b.INUMs[len(b.INUMs)-1]},
		"inum + wrong day": {INUM: b.INUMs[0], From: b.Start.Add(time.Second)},
		"min duration":     {MinDuration: 25 * time.Minute},
		"max duration":     {MaxDuration: time.Minute, Sort: "-duration"},
		"duration range":   {MinDuration: 5 * time.Minute, MaxDuration: 6 * time.Minute, Queue: b.Queue},
		"status":           {Status: StatusInterrupted},
		"status unknown":   {Status: "bogus"},
		"status + time":    {Status: StatusPartial, From: day, Sort: "-start"},
		"tag":              {Tags: []string{"vip"}},
		"two tags":         {Tags: []string{"vip", "sales"}},
		"tag + agent":      {Tags: []string{"complaint"}, Agent: b.Agents[0]},
		"everything":       {Agent: a.Agents[0], Queue: a.Queue, Direction: a.Direction, Status: a.Status, From: a.Start, To: a.Start.Add(time.Millisecond), Number: cust(a)[len(cust(a))-5:], TaskSID: a.TaskSID},
		"empty range":      {From: day, To: day},
	}
	for _, sort := range []string{"start", "-start", "duration", "-duration"} {
		qs["sort "+sort] = Query{Sort: sort, Limit: 100, Offset: 30}
		qs["sort "+sort+" agent"] = Query{Sort: sort, Agent: b.Agents[0]}
	}
	for _, off := range []int{0, 49, 50, 1990, 5000} {
		qs[fmt.Sprintf("page %d", off)] = Query{Offset: off, Limit: 50}
	}
	return qs
}

func checkQueries(t *testing.T, s *Store, all []Interaction, qs map[string]Query) {
	for name, q := range qs {
		t.Run(name, func(t *testing.T) {
			got, err := s.Search(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			want := refSearch(all, q)
			if got.Total != want.Total || got.TotalCapped {
				t.Errorf("total = %d (capped %v), want %d", got.Total, got.TotalCapped, want.Total)
			}
			if diff := gocmp.Diff(want.Items, got.Items, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSearchMatchesReference(t *testing.T) {
	g := genConfig{n: 2000, agents: 30, queues: 5, dids: 3, end: benchBase, span: 10 * 24 * time.Hour, seed: 7}
	s, all := loadGenerated(t, g)
	qs := testQueries(g, all)
	checkQueries(t, s, all, qs)
	// Every query family must have found something, or the table tests little.
	for _, name := range []string{"agent", "number last 4", "number middle", "queue + dir", "inum", "tag + agent", "everything", "number did"} {
		if refSearch(all, qs[name]).Total == 0 {
			t.Errorf("query %q matches nothing in the generated data", name)
		}
	}
}

func TestSearchPagination(t *testing.T) {
	g := genConfig{n: 500, agents: 5, queues: 2, dids: 2, end: benchBase, span: 24 * time.Hour, seed: 3}
	s, all := loadGenerated(t, g)
	for _, q := range []Query{{Agent: g.agent(1)}, {Number: "555"}, {Sort: "duration"}, {Sort: "-start", Queue: g.queue(0)}} {
		want := refSearch(all, Query{Agent: q.Agent, Number: q.Number, Queue: q.Queue, Sort: q.Sort, Limit: MaxLimit})
		var ids []string
		for off := 0; ; off += 7 {
			q.Offset, q.Limit = off, 7
			res, err := s.Search(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != want.Total {
				t.Fatalf("%+v: total %d, want %d", q, res.Total, want.Total)
			}
			if len(res.Items) == 0 {
				break
			}
			for _, it := range res.Items {
				ids = append(ids, it.ID)
			}
		}
		var wantIDs []string
		for _, it := range want.Items {
			wantIDs = append(wantIDs, it.ID)
		}
		if diff := gocmp.Diff(wantIDs, ids); diff != "" {
			t.Errorf("%+v: paged ids (-want +got):\n%s", q, diff)
		}
	}
}

// TestSearchLatencySmall runs the benchmark's query shapes on 10k
// interactions and checks them against the reference (no timing).
func TestSearchLatencySmall(t *testing.T) {
	g := genConfig{n: 10_000, agents: 300, queues: 20, dids: 20, end: benchBase, span: 90 * 24 * time.Hour, seed: 11}
	s, all := loadGenerated(t, g)
	qs := map[string]Query{}
	for i := range 5 {
		for name, q := range benchQueries(g, uint64(i)) {
			qs[fmt.Sprintf("%s/%d", name, i)] = q
		}
	}
	checkQueries(t, s, all, qs)
}
