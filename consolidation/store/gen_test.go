package store

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"callrec"
)

// genConfig shapes generated interactions.
type genConfig struct {
	n      int
	agents int
	teams  int // agent a belongs to team a%teams; 0: no teams
	queues int
	dids   int
	end    time.Time     // newest start
	span   time.Duration // starts spread over [end-span, end)
	seed   uint64
}

var benchBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func (g genConfig) agent(i int) string { return fmt.Sprintf("%d", 1001+i) }
func (g genConfig) team(i int) string  { return fmt.Sprintf("team-%02d", i) }

// agentTeam returns the team of agent i, "" when g has no teams.
func (g genConfig) agentTeam(i int) string {
	if g.teams == 0 {
		return ""
	}
	return g.team(i % g.teams)
}
func (g genConfig) queue(i int) string { return fmt.Sprintf("queue-%02d", i) }
func (g genConfig) did(i int) string   { return fmt.Sprintf("+1800555%04d", 100+i*37) }

var genTags = []string{"vip", "complaint", "escalated", "sales", "qa-review"}

// gen returns interaction i; it depends only on (seed, i), so a benchmark
// can regenerate any interaction's values without keeping them. Starts grow
// with i.
func (g genConfig) gen(i int) Interaction {
	r := rand.New(rand.NewPCG(g.seed, uint64(i)))
	step := g.span / time.Duration(g.n)
	start := g.end.Add(-g.span + time.Duration(i)*step + time.Duration(r.Int64N(int64(step)+1))).Truncate(time.Millisecond)
	dur := time.Duration(30+r.IntN(30*60-30)) * time.Second
	customer := fmt.Sprintf("+1%d%02d%d%06d", 2+r.IntN(8), r.IntN(100), 2+r.IntN(8), r.IntN(1_000_000))
	did := g.did(r.IntN(g.dids))
	in := Interaction{
		TaskSID:       fmt.Sprintf("WT%032x", r.Uint64()),
		CallSID:       fmt.Sprintf("CA%032x", r.Uint64()),
		ConferenceSID: fmt.Sprintf("CF%032x", r.Uint64()),
		Queue:         g.queue(r.IntN(g.queues)),
		Start:         start,
		End:           start.Add(dur),
		DurationMS:    dur.Milliseconds(),
		Updated:       start.Add(dur + time.Minute),
	}
	if r.IntN(10) < 7 {
		in.Direction, in.From, in.To = "inbound", customer, did
	} else {
		in.Direction, in.From, in.To = "outbound", did, customer
	}
	noTask := r.IntN(50) == 0
	if noTask {
		in.TaskSID = "" // a call that never became a task
		in.Queue = ""
	}
	agents := []int{r.IntN(g.agents)}
	if r.IntN(7) == 0 { // transferred: the second agent is often of another team
		agents = append(agents, r.IntN(g.agents))
	}
	for j, a := range agents {
		in.Agents = append(in.Agents, g.agent(a))
		// Without a task there is no worker, so no team.
		if t := g.agentTeam(a); t != "" && !noTask && !slices.Contains(in.Teams, t) {
			in.Teams = append(in.Teams, t)
		}
		n, err := callrec.NewINUM(uint16(1+r.IntN(4)), uint64(i)*2+uint64(j)+1)
		if err != nil {
			panic(err)
		}
		in.INUMs = append(in.INUMs, n)
		segStart := start.Add(time.Duration(j) * dur / 2)
		in.Segments = append(in.Segments, Segment{Agent: g.agent(a), Team: g.agentTeam(a),
			ReservationSID: fmt.Sprintf("WR%032x", r.Uint64()), WorkerSID: fmt.Sprintf("WK%032x", r.Uint64()),
			Start: segStart, End: start.Add(dur), Recorded: true, INUM: n, OffsetMS: int64(j) * 250})
	}
	switch x := r.IntN(100); {
	case x < 85:
		in.Status = StatusComplete
	case x < 90:
		in.Status = StatusPartial
	case x < 95:
		in.Status = StatusInterrupted
	case x < 96:
		in.Status = StatusRecording
	default:
		in.Status = StatusMissingAudio
	}
	for _, t := range genTags {
		if r.IntN(12) == 0 {
			in.Tags = append(in.Tags, t)
		}
	}
	if in.TaskSID != "" {
		in.ID = in.TaskSID
	} else {
		in.ID = "call:" + in.CallSID
	}
	return in
}
