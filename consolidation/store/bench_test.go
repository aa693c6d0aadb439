package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// benchVersion names the cached benchmark database; bump it when the
// generator or the on-disk layout changes.
const benchVersion = "v2"

var benchGen = genConfig{n: 1_000_000, agents: 300, teams: 20, queues: 20, dids: 20, end: benchBase,
	span: 90 * 24 * time.Hour, seed: 42}

// benchQueries returns the typical filters with parameters drawn from seed.
func benchQueries(g genConfig, seed uint64) map[string]Query {
	r := rand.New(rand.NewPCG(seed, 99))
	pick := func() Interaction { return g.gen(r.IntN(g.n)) }
	end := g.end.Add(-time.Duration(r.Int64N(int64(60 * 24 * time.Hour))))
	cust := pick()
	num := cust.From
	if cust.Direction == "outbound" {
		num = cust.To
	}
	dir := "inbound"
	if r.IntN(3) == 0 {
		dir = "outbound"
	}
	// A supervisor's searches: their team's agent, or one of their teams.
	agent := r.IntN(g.agents)
	team := g.agentTeam(agent)
	teams3 := []string{team}
	for len(teams3) < 3 {
		if t := g.team(r.IntN(g.teams)); !slices.Contains(teams3, t) {
			teams3 = append(teams3, t)
		}
	}
	return map[string]Query{
		"team":           {Teams: []string{team}},
		"teams3":         {Teams: teams3},
		"team24h":        {Teams: []string{team}, From: end.Add(-24 * time.Hour), To: end},
		"teamAgent":      {Teams: []string{team}, Agent: g.agent(agent)},
		"teams3Duration": {Teams: teams3, Sort: SortDuration},
		"last24h":        {From: end.Add(-24 * time.Hour), To: end},
		"agent7d":        {Agent: g.agent(r.IntN(g.agents)), From: end.Add(-7 * 24 * time.Hour), To: end},
		"number4":        {Number: num[len(num)-4:]},
		"queueDir30d":    {Queue: g.queue(r.IntN(g.queues)), Direction: dir, From: end.Add(-30 * 24 * time.Hour), To: end},
		"inum":           {INUM: pick().INUMs[0]},
		"interrupted90d": {Status: StatusInterrupted, From: g.end.Add(-90 * 24 * time.Hour), To: g.end},
	}
}

var bench struct {
	once sync.Once
	s    *Store
	err  error
}

// benchStore opens the cached 1M-interaction database, building it first
// when absent.
func benchStore(b *testing.B) *Store {
	bench.once.Do(func() {
		path := filepath.Join(os.TempDir(), "callrec-store-bench-"+benchVersion+".db")
		if _, err := os.Stat(path); err == nil {
			bench.s, bench.err = Open(path)
			fmt.Printf("store bench: reusing %s\n", path)
			return
		}
		tmp := path + ".tmp"
		os.Remove(tmp)
		s, err := Open(tmp)
		if err != nil {
			bench.err = err
			return
		}
		s.db.NoSync = true
		t0 := time.Now()
		batch := make([]Interaction, 0, 10_000)
		for i := 0; i < benchGen.n && err == nil; i++ {
			batch = append(batch, benchGen.gen(i))
			if len(batch) == cap(batch) || i == benchGen.n-1 {
				err = s.PutMany(context.Background(), batch)
				batch = batch[:0]
			}
		}
		if err == nil {
			err = s.db.Sync()
		}
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, path)
		}
		if err != nil {
			bench.err = err
			return
		}
		st, _ := os.Stat(path)
		fmt.Printf("store bench: built %d interactions in %s (%d MB) at %s\n",
			benchGen.n, time.Since(t0).Round(time.Millisecond), st.Size()>>20, path)
		bench.s, bench.err = Open(path)
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.s
}

// BenchmarkSearch runs each typical filter with random parameters over 1M
// interactions and reports latency percentiles and the mean total found.
func BenchmarkSearch(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	for _, name := range []string{"last24h", "agent7d", "number4", "queueDir30d", "inum", "interrupted90d",
		"team", "teams3", "team24h", "teamAgent", "teams3Duration"} {
		b.Run(name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			total := 0
			i := 0
			for b.Loop() {
				b.StopTimer()
				q := benchQueries(benchGen, uint64(i))[name]
				i++
				b.StartTimer()
				t0 := time.Now()
				res, err := s.Search(ctx, q)
				lat = append(lat, time.Since(t0))
				if err != nil {
					b.Fatal(err)
				}
				total += res.Total
			}
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / 1e6
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(total)/float64(len(lat)), "total/op")
		})
	}
}
