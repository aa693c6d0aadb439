package store

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
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
			q.Status != "" && in.Status != q.Status,
			len(q.Teams) > 0 && !slices.ContainsFunc(in.Teams, func(t string) bool { return slices.Contains(q.Teams, t) }):
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
	if g.teams > 0 {
		// a and b with a team: the first at or after them.
		withTeam := func(i int) Interaction {
			for len(all[i].Teams) == 0 {
				i++
			}
			return all[i]
		}
		a, b := withTeam(len(all)/3), withTeam(2*len(all)/3)
		t1, t2, t3 := g.team(0), g.team(1), g.team(g.teams-1)
		for name, q := range map[string]Query{
			"team":                   {Teams: []string{t1}},
			"team + time":            {Teams: []string{t1}, From: day, To: day.Add(24 * time.Hour)},
			"team + from":            {Teams: []string{t2}, From: g.end.Add(-12 * time.Hour), Sort: "-start"},
			"team + agent":           {Teams: []string{a.Teams[0]}, Agent: a.Agents[0]},
			"team + other agent":     {Teams: []string{t1}, Agent: g.agent(1)},
			"team + status":          {Teams: []string{t2}, Status: StatusPartial},
			"team + status unknown":  {Teams: []string{t2}, Status: "bogus"},
			"team + direction":       {Teams: []string{t1}, Direction: "outbound", Sort: "duration"},
			"team + number":          {Teams: []string{a.Teams[0]}, Number: cust(a)[len(cust(a))-4:]},
			"team + queue":           {Teams: []string{t3}, Queue: a.Queue, Sort: "-duration"},
			"team + tag":             {Teams: []string{t1}, Tags: []string{"vip"}},
			"team + inum":            {Teams: []string{b.Teams[0]}, INUM: b.INUMs[0]},
			"team + inum other":      {Teams: []string{"team-none"}, INUM: b.INUMs[0]},
			"team + duration":        {Teams: []string{t3}, MinDuration: 10 * time.Minute, MaxDuration: 20 * time.Minute},
			"team unknown":           {Teams: []string{"team-none"}},
			"team empty name":        {Teams: []string{""}},
			"teams":                  {Teams: []string{t1, t2, t3}},
			"teams repeated":         {Teams: []string{t2, t1, t2}, Limit: 20, Offset: 10},
			"teams + unknown":        {Teams: []string{"team-none", t3}},
			"teams + time":           {Teams: []string{t3, t1}, From: day, To: day.Add(24 * time.Hour), Sort: "-start"},
			"teams + agent":          {Teams: []string{t1, t2}, Agent: b.Agents[0]},
			"teams unsorted + agent": {Teams: []string{t3, "team-none", b.Teams[0], t1}, Agent: b.Agents[0]},
			"teams unsorted + queue": {Teams: []string{t3, "team-none", t1}, Queue: a.Queue, Sort: "duration"},
			"teams + number":         {Teams: []string{t1, b.Teams[0], t3}, Number: cust(b)[len(cust(b))-4:]},
			"teams + queue + dir":    {Teams: []string{t1, t2}, Queue: b.Queue, Direction: "inbound"},
			"teams + tags":           {Teams: []string{t1, t2}, Tags: []string{"vip", "sales"}},
			"teams + status":         {Teams: []string{t2, t3}, Status: StatusInterrupted, From: day.Add(-96 * time.Hour)},
			"teams + direction":      {Teams: []string{t2, t3}, Direction: "inbound", Sort: "-duration"},
			"teams + task sid":       {Teams: []string{t1, t2, t3}, TaskSID: a.TaskSID},
			"teams everything":       {Teams: []string{t1, a.Teams[0]}, Agent: a.Agents[0], Queue: a.Queue, Direction: a.Direction, Status: a.Status, From: a.Start, To: a.Start.Add(time.Millisecond), Number: cust(a)[len(cust(a))-5:]},
		} {
			qs[name] = q
		}
		all := make([]string, g.teams)
		for i := range all {
			all[i] = g.team(i)
		}
		qs["teams all"] = Query{Teams: all, Limit: 200, Offset: 100}
		for _, sort := range []string{"start", "-start", "duration", "-duration"} {
			qs["sort "+sort+" team"] = Query{Sort: sort, Teams: []string{t2}, Limit: 40, Offset: 20}
			qs["sort "+sort+" teams"] = Query{Sort: sort, Teams: []string{t1, t3}, Limit: 100, Offset: 60}
			qs["sort "+sort+" teams + range"] = Query{Sort: sort, Teams: []string{t1, t2, t3}, From: day.Add(-72 * time.Hour), To: day}
		}
		for _, off := range []int{0, 49, 50, 330, 5000} {
			qs[fmt.Sprintf("page %d teams", off)] = Query{Offset: off, Limit: 50, Teams: []string{t2, t3}}
		}
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
	g := genConfig{n: 2000, agents: 30, teams: 6, queues: 5, dids: 3, end: benchBase, span: 10 * 24 * time.Hour, seed: 7}
	s, all := loadGenerated(t, g)
	qs := testQueries(g, all)
	checkQueries(t, s, all, qs)
	// Every query family must have found something, or the table tests little.
	for _, name := range []string{"agent", "number last 4", "number middle", "queue + dir", "inum", "tag + agent", "everything", "number did",
		"team + agent", "team + number", "team + inum", "team + status", "team + tag", "teams + number", "teams + agent",
		"teams + tags", "teams + status", "teams + task sid", "teams everything", "sort start teams + range",
		"teams unsorted + agent", "teams unsorted + queue"} {
		if refSearch(all, qs[name]).Total == 0 {
			t.Errorf("query %q matches nothing in the generated data", name)
		}
	}
	// The merge must meet calls of two queried teams, and the data must
	// hold calls without a team.
	multi, none := 0, 0
	q := qs["teams"]
	for _, in := range all {
		n := 0
		for _, t := range in.Teams {
			if slices.Contains(q.Teams, t) {
				n++
			}
		}
		if n > 1 {
			multi++
		}
		if len(in.Teams) == 0 {
			none++
		}
	}
	if multi == 0 || none == 0 {
		t.Errorf("generated data: %d calls of two queried teams, %d without a team; want some of each", multi, none)
	}
}

func TestSearchPagination(t *testing.T) {
	g := genConfig{n: 500, agents: 5, teams: 3, queues: 2, dids: 2, end: benchBase, span: 24 * time.Hour, seed: 3}
	s, all := loadGenerated(t, g)
	for _, q := range []Query{{Agent: g.agent(1)}, {Number: "555"}, {Sort: "duration"}, {Sort: "-start", Queue: g.queue(0)},
		{Teams: []string{g.team(1)}}, {Teams: []string{g.team(0), g.team(2)}}, {Teams: []string{g.team(0), g.team(1)}, Sort: "-start"},
		{Teams: []string{g.team(2), g.team(1)}, Sort: "-duration"}, {Teams: []string{g.team(2)}, Sort: "duration", Agent: g.agent(2)}} {
		want := refSearch(all, Query{Agent: q.Agent, Number: q.Number, Queue: q.Queue, Teams: q.Teams, Sort: q.Sort, Limit: MaxLimit})
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
	g := genConfig{n: 10_000, agents: 300, teams: 20, queues: 20, dids: 20, end: benchBase, span: 90 * 24 * time.Hour, seed: 11}
	s, all := loadGenerated(t, g)
	qs := map[string]Query{}
	for i := range 5 {
		for name, q := range benchQueries(g, uint64(i)) {
			qs[fmt.Sprintf("%s/%d", name, i)] = q
		}
	}
	checkQueries(t, s, all, qs)
}

func TestChoosePlan(t *testing.T) {
	day := benchBase.Add(-24 * time.Hour)
	tests := []struct {
		name       string
		q          Query
		wantName   string
		wantFields []string
		wantMeta   bool // records must be read for residual filters
	}{
		{"team", Query{Teams: []string{"north"}}, "team", []string{"north"}, false},
		{"team + time + status", Query{Teams: []string{"north"}, From: day, Status: StatusPartial}, "team", []string{"north"}, false},
		{"team + direction", Query{Teams: []string{"north"}, Direction: "inbound"}, "team", []string{"north"}, false},
		{"team repeated", Query{Teams: []string{"north", "north"}}, "team", []string{"north"}, false},
		{"team + queue", Query{Teams: []string{"north"}, Queue: "q"}, "team", []string{"north"}, true},
		{"team + tag", Query{Teams: []string{"north"}, Tags: []string{"vip"}}, "team", []string{"north"}, true},
		{"team + agent", Query{Teams: []string{"north"}, Agent: "1001"}, "agent", []string{"1001"}, true},
		{"team + number", Query{Teams: []string{"north"}, Number: "1234"}, "number", []string{"4321"}, true},
		{"team + inum", Query{Teams: []string{"north"}, INUM: "n1"}, "inum", []string{"n1"}, true},
		{"teams", Query{Teams: []string{"south", "north", "east"}}, "team", []string{"east", "north", "south"}, false},
		{"teams + status", Query{Teams: []string{"south", "north"}, Status: StatusInterrupted}, "team", []string{"north", "south"}, false},
		{"teams + direction", Query{Teams: []string{"south", "north"}, Direction: "inbound"}, "team", []string{"north", "south"}, false},
		{"teams + queue", Query{Teams: []string{"south", "north"}, Queue: "q"}, "queue", []string{"q"}, true},
		{"teams + tag", Query{Teams: []string{"south", "north"}, Tags: []string{"vip"}}, "tag", []string{"vip"}, true},
		{"teams + agent", Query{Teams: []string{"south", "north"}, Agent: "1001"}, "agent", []string{"1001"}, true},
		{"no team", Query{From: day}, "time", []string{""}, false},
		{"empty teams", Query{Teams: []string{}}, "time", []string{""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := compile(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			p := choosePlan(c)
			if p.name != tt.wantName || !slices.Equal(p.fields, tt.wantFields) {
				t.Errorf("plan = %s %q, want %s %q", p.name, p.fields, tt.wantName, tt.wantFields)
			}
			if got := c.metaFiltersSet(p.name); got != tt.wantMeta {
				t.Errorf("metaFiltersSet(%s) = %v, want %v", p.name, got, tt.wantMeta)
			}
		})
	}
}

// TestSearchTeamsCountCap checks that merged team ranges stream: a start
// sort stops counting at CountCap with the right page, while a duration sort
// counts exactly.
func TestSearchTeamsCountCap(t *testing.T) {
	g := genConfig{n: CountCap + 1500, agents: 9, teams: 3, queues: 2, dids: 2, end: benchBase, span: 30 * 24 * time.Hour, seed: 5}
	s, all := loadGenerated(t, g)
	teams := []string{g.team(0), g.team(1), g.team(2)}
	for _, q := range []Query{
		{Teams: teams, Offset: 120, Limit: 30},
		{Teams: teams, Sort: SortStartAsc, Offset: 9990, Limit: 20},
		{Teams: teams, Sort: SortStartAsc, Offset: CountCap, Limit: 10},
		{Teams: teams, Sort: SortDurationAsc, Offset: 77, Limit: 10},
	} {
		want := refSearch(all, q)
		if want.Total <= CountCap {
			t.Fatalf("%+v: reference total %d, want over CountCap", q, want.Total)
		}
		got, err := s.Search(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		wantTotal, wantCapped := CountCap, true
		switch {
		case q.Sort == SortDurationAsc:
			wantTotal, wantCapped = want.Total, false
		case q.Offset+q.Limit > CountCap:
			wantTotal = q.Offset + q.Limit
		}
		if got.Total != wantTotal || got.TotalCapped != wantCapped {
			t.Errorf("%+v: total %d capped %v, want %d capped %v", q, got.Total, got.TotalCapped, wantTotal, wantCapped)
		}
		if diff := gocmp.Diff(want.Items, got.Items, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%+v: items (-want +got):\n%s", q, diff)
		}
	}
}

// TestTopK checks the bounded heap against a full sort, with many ties.
func TestTopK(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 7, 100, 1000} {
		hits := make([]hit, n)
		for i := range hits {
			hits[i] = hit{inv: uint64(r.IntN(20)), dur: int64(r.IntN(10)), id: fmt.Appendf(nil, "WT%04d", i)}
		}
		for _, sort := range []string{SortStart, SortStartAsc, SortDuration, SortDurationAsc} {
			want := slices.Clone(hits)
			slices.SortFunc(want, orderFunc(sort))
			for _, k := range []int{0, 1, 3, 50, n, n + 5} {
				top := topK{k: k, cmp: orderFunc(sort)}
				for _, h := range hits {
					top.add(h)
				}
				if diff := gocmp.Diff(want[:min(k, n)], top.sorted(), cmpopts.EquateEmpty(), gocmp.AllowUnexported(hit{})); diff != "" {
					t.Errorf("n %d sort %s k %d (-want +got):\n%s", n, sort, k, diff)
				}
			}
		}
	}
}
