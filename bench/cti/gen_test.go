package cti_test

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"callrec"
	"callrec/eventadapter"
)

// Fixed SIDs of the account, as in testdata/twilio/event-streams.
const (
	accountSID   = "ACe268443e43d93dab7ebef303bbe9642f"
	workspaceSID = "WS1629dee48cc4e53161f9b2be8614e062"
	workflowSID  = "WW2e2e2d35a15a6146a9bbbc246a9ea4cd"
	queueSID     = "WQ5b66b75bc906e008c3a9ed130b8b4385"
	channelSID   = "TCabf564adad955c8b4134a31aa6298ec4"
	activitySID  = "WAe4894ca167b08880bfc35862f18575eb"
	centerNum    = "+14155550100"
	workers      = 300 // agents the calls are spread over
)

// base is the simulated time of the first call of every workload.
var base = time.Date(2025, 6, 3, 14, 0, 0, 0, time.UTC)

// runSeq makes the SIDs of every generated workload unique in the process,
// so workloads can go one after the other through the same stores.
var runSeq atomic.Uint64

// genCall is one generated call.
type genCall struct {
	TaskSID, CustomerLeg, AgentLeg, ConferenceSID, ReservationSID string
	WorkerSID, WorkerName, From                                   string
}

// StreamName is the name the tracker gives the call's (first) stream.
func (c genCall) StreamName() string { return "rec-" + c.TaskSID }

// genEvent is one generated CloudEvent.
type genEvent struct {
	Call int // index into workload.Calls
	Type callrec.CTIEventType
	At   time.Duration // simulated time since base
	Data []byte        // the CloudEvent JSON
}

// workload is a set of answered inbound calls whose events are interleaved
// by simulated time.
type workload struct {
	Calls  []genCall
	Events []genEvent // in simulated time order
}

// perCall is the number of events of one generated call.
const perCall = 8

// generate makes n answered inbound calls (task.created,
// reservation.created, reservation.accepted, task.updated with the
// conference, reservation.wrapup, task.wrapup, reservation.completed,
// task.completed), with random ring, talk and wrap-up times, started at a
// steady rate such that about `concurrency` calls are in progress at once.
func generate(n, concurrency int, seed uint64) workload {
	run := runSeq.Add(1)
	rng := rand.New(rand.NewPCG(seed, run))
	type timing struct{ ring, talk, wrap time.Duration }
	times := make([]timing, n)
	var total time.Duration
	for i := range times {
		t := timing{
			ring: time.Duration(3+rng.IntN(17)) * time.Second,
			talk: time.Duration(30+rng.IntN(270)) * time.Second,
			wrap: time.Duration(5+rng.IntN(55)) * time.Second,
		}
		times[i] = t
		total += t.ring + t.talk + t.wrap
	}
	gap := time.Duration(0)
	if n > 0 && concurrency > 0 {
		gap = total / time.Duration(n) / time.Duration(concurrency)
	}
	w := workload{Calls: make([]genCall, n), Events: make([]genEvent, 0, n*perCall)}
	for i := range n {
		k := i % workers
		c := genCall{
			TaskSID:        fmt.Sprintf("WT%08x%024x", run, i),
			CustomerLeg:    fmt.Sprintf("CA%08x%024x", run, 2*i),
			AgentLeg:       fmt.Sprintf("CA%08x%024x", run, 2*i+1),
			ConferenceSID:  fmt.Sprintf("CF%08x%024x", run, i),
			ReservationSID: fmt.Sprintf("WR%08x%024x", run, i),
			WorkerSID:      fmt.Sprintf("WK%032x", k),
			WorkerName:     fmt.Sprintf("agent%03d@example.com", k),
			From:           fmt.Sprintf("+1415%07d", 5550000+i%10000),
		}
		w.Calls[i] = c
		g := callGen{c: c, run: run, idx: i, start: time.Duration(i) * gap}
		t := times[i]
		accepted := t.ring
		ended := accepted + t.talk
		done := ended + t.wrap
		g.add(&w, callrec.EventTaskCreated, 0, "pending", 1, -1)
		g.add(&w, callrec.EventReservationCreated, 100*time.Millisecond, "reserved", 1, 0)
		g.add(&w, callrec.EventReservationAccepted, accepted, "assigned", 2, 1)
		g.conf = true // Flex writes the conference into the task attributes
		g.add(&w, callrec.EventTaskUpdated, accepted+1500*time.Millisecond, "assigned", 3, -1)
		g.add(&w, callrec.EventReservationWrapup, ended, "wrapping", 4, 2)
		g.add(&w, callrec.EventTaskWrapup, ended+10*time.Millisecond, "wrapping", 4, -1)
		g.add(&w, callrec.EventReservationCompleted, done, "completed", 5, 3)
		g.add(&w, callrec.EventTaskCompleted, done+10*time.Millisecond, "completed", 5, -1)
	}
	slices.SortStableFunc(w.Events, func(a, b genEvent) int { return cmp.Compare(a.At, b.At) })
	return w
}

// callGen builds the CloudEvents of one call.
type callGen struct {
	c     genCall
	run   uint64
	idx   int
	start time.Duration
	seq   int
	conf  bool
}

func (g *callGen) add(w *workload, typ callrec.CTIEventType, off time.Duration, status string, taskVer, resVer int) {
	g.seq++
	at := g.start + off
	w.Events = append(w.Events, genEvent{Call: g.idx, Type: typ, At: at, Data: g.cloudEvent(typ, base.Add(at), status, taskVer, resVer)})
}

// The CloudEvent shape of Event Streams (TaskRouter.WDSEvent/4), as in
// testdata/twilio/event-streams.
type (
	cloudEvent struct {
		SpecVersion     string  `json:"specversion"`
		Type            string  `json:"type"`
		Source          string  `json:"source"`
		ID              string  `json:"id"`
		DataSchema      string  `json:"dataschema"`
		DataContentType string  `json:"datacontenttype"`
		Time            string  `json:"time"`
		Data            wdsData `json:"data"`
	}
	wdsData struct {
		SID                 string     `json:"sid"`
		Name                string     `json:"name"`
		AccountSID          string     `json:"account_sid"`
		AccountFriendlyName string     `json:"account_friendly_name"`
		ParentAccountSID    string     `json:"parent_account_sid"`
		ParentFriendlyName  string     `json:"parent_friendly_name"`
		Timestamp           string     `json:"timestamp"`
		Level               string     `json:"level"`
		Group               string     `json:"group"`
		ProductName         string     `json:"product_name"`
		Publisher           string     `json:"publisher"`
		PublisherMetadata   string     `json:"publisher_metadata"`
		PayloadType         string     `json:"payload_type"`
		Payload             wdsPayload `json:"payload"`
	}
	wdsPayload struct {
		SID                       string  `json:"sid"`
		EventType                 string  `json:"eventtype"`
		AccountSID                string  `json:"account_sid"`
		Timestamp                 string  `json:"timestamp"`
		EventDescription          string  `json:"event_description"`
		ResourceType              string  `json:"resource_type"`
		ResourceSID               string  `json:"resource_sid"`
		WorkspaceSID              string  `json:"workspace_sid"`
		WorkspaceName             string  `json:"workspace_name"`
		WorkflowSID               string  `json:"workflow_sid"`
		WorkflowName              string  `json:"workflow_name"`
		TaskSID                   string  `json:"task_sid"`
		TaskAttributes            string  `json:"task_attributes"`
		TaskAge                   int     `json:"task_age"`
		TaskDateCreated           string  `json:"task_date_created"`
		TaskPriority              int     `json:"task_priority"`
		TaskAssignmentStatus      string  `json:"task_assignment_status"`
		TaskChannelSID            string  `json:"task_channel_sid"`
		TaskChannelUniqueName     string  `json:"task_channel_unique_name"`
		TaskQueueSID              string  `json:"task_queue_sid"`
		TaskQueueName             string  `json:"task_queue_name"`
		TaskQueueEnteredDate      string  `json:"task_queue_entered_date"`
		TaskQueueTargetExpression string  `json:"task_queue_target_expression"`
		TaskRoutingTarget         *string `json:"task_routing_target"`
		TaskVersion               int     `json:"task_version"`
		TaskCompletedReason       string  `json:"task_completed_reason,omitempty"`

		ReservationSID                 string `json:"reservation_sid,omitempty"`
		ReservationVersion             *int   `json:"reservation_version,omitempty"`
		WorkerSID                      string `json:"worker_sid,omitempty"`
		WorkerName                     string `json:"worker_name,omitempty"`
		WorkerAttributes               string `json:"worker_attributes,omitempty"`
		WorkerActivitySID              string `json:"worker_activity_sid,omitempty"`
		WorkerActivityName             string `json:"worker_activity_name,omitempty"`
		WorkerChannelCapacity          *int   `json:"worker_channel_capacity,omitempty"`
		WorkerChannelAvailable         *int   `json:"worker_channel_available,omitempty"`
		WorkerChannelAvailableCapacity *int   `json:"worker_channel_available_capacity,omitempty"`
		WorkerChannelTaskCount         *int   `json:"worker_channel_task_count,omitempty"`
	}
)

const rfc3339Milli = "2006-01-02T15:04:05.000Z07:00"

func (g *callGen) cloudEvent(typ callrec.CTIEventType, at time.Time, status string, taskVer, resVer int) []byte {
	c := g.c
	ts := at.Format(rfc3339Milli)
	created := base.Add(g.start)
	evSID := fmt.Sprintf("EV%08x%016x%08x", g.run, g.idx, g.seq)
	group, action, _ := strings.Cut(string(typ), ".")
	p := wdsPayload{
		SID: evSID, EventType: string(typ), AccountSID: accountSID, Timestamp: ts,
		ResourceType: group, ResourceSID: c.TaskSID,
		WorkspaceSID: workspaceSID, WorkspaceName: "Flex Task Assignment",
		WorkflowSID: workflowSID, WorkflowName: "Assign to Anyone",
		TaskSID: c.TaskSID, TaskAttributes: g.taskAttributes(),
		TaskAge: int(at.Sub(created) / time.Second), TaskDateCreated: created.Format(rfc3339Milli),
		TaskAssignmentStatus: status, TaskChannelSID: channelSID, TaskChannelUniqueName: "voice",
		TaskQueueSID: queueSID, TaskQueueName: "Support", TaskQueueEnteredDate: created.Add(150 * time.Millisecond).Format(rfc3339Milli),
		TaskQueueTargetExpression: "1==1", TaskVersion: taskVer,
		EventDescription: fmt.Sprintf("Task %s %s", c.TaskSID, action),
	}
	if typ == callrec.EventTaskCompleted {
		p.TaskCompletedReason = "Task completed by worker"
	}
	if group == "reservation" {
		one, hundred := 1, 100
		p.ResourceSID = c.ReservationSID
		p.EventDescription = fmt.Sprintf("Reservation %s %s by Worker %s", c.ReservationSID, action, c.WorkerSID)
		p.ReservationSID, p.ReservationVersion = c.ReservationSID, &resVer
		p.WorkerSID, p.WorkerName, p.WorkerAttributes = c.WorkerSID, c.WorkerName, workerAttributes(c)
		p.WorkerActivitySID, p.WorkerActivityName = activitySID, "Available"
		p.WorkerChannelCapacity, p.WorkerChannelAvailable = &one, &one
		p.WorkerChannelAvailableCapacity, p.WorkerChannelTaskCount = &hundred, &one
	}
	ev := cloudEvent{
		SpecVersion: "1.0", Type: eventadapter.TypePrefix + string(typ),
		Source:     "/v1/Workspaces/" + workspaceSID + "/Events/" + evSID,
		ID:         fmt.Sprintf("EZ%08x%016x%08x", g.run, g.idx, g.seq),
		DataSchema: "https://events-schemas.twilio.com/TaskRouter.WDSEvent/4", DataContentType: "application/json",
		Time: ts,
		Data: wdsData{
			SID: evSID, Name: eventName(typ), AccountSID: accountSID, AccountFriendlyName: "Acme Support",
			ParentAccountSID: accountSID, ParentFriendlyName: "Acme Support", Timestamp: ts, Level: "INFO",
			Group: group, ProductName: "TaskRouter", Publisher: "Flex Task Assignment", PublisherMetadata: "{}",
			PayloadType: "application/json", Payload: p,
		},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

// taskAttributes are a Studio "Send to Flex" voice task's attributes, with
// the conference once Flex has written it.
func (g *callGen) taskAttributes() string {
	c := g.c
	a := map[string]any{
		"from_country": "US", "called": centerNum, "to_country": "US", "to_city": "SAN FRANCISCO", "to_state": "CA",
		"caller_country": "US", "call_status": "in-progress", "call_sid": c.CustomerLeg, "account_sid": accountSID,
		"from_zip": "94105", "from": c.From, "direction": "inbound", "called_zip": "94107", "caller_state": "CA",
		"to_zip": "94107", "called_country": "US", "from_city": "SAN FRANCISCO", "called_city": "SAN FRANCISCO",
		"caller_zip": "94105", "api_version": "2010-04-01", "called_state": "CA", "from_state": "CA",
		"caller": c.From, "caller_city": "SAN FRANCISCO", "to": centerNum, "type": "inbound", "name": c.From,
	}
	if g.conf {
		a["conference"] = map[string]any{"sid": c.ConferenceSID,
			"participants": map[string]any{"customer": c.CustomerLeg, "worker": c.AgentLeg}}
	}
	b, err := json.Marshal(a)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func workerAttributes(c genCall) string {
	name, _, _ := strings.Cut(c.WorkerName, "@")
	b, err := json.Marshal(map[string]any{
		"routing":   map[string]any{"skills": []string{"support"}, "levels": map[string]any{}},
		"full_name": "Agent " + name, "image_url": "https://www.gravatar.com/avatar/00000000000000000000000000000000?d=mp",
		"roles": []string{"agent"}, "contact_uri": "client:" + strings.NewReplacer("@", "_40", ".", "_2E").Replace(c.WorkerName),
		"disabled_skills": map[string]any{"skills": []string{}, "levels": map[string]any{}}, "email": c.WorkerName,
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// eventName is the WDSEvent name of a type: task.created → TaskCreated.
func eventName(typ callrec.CTIEventType) string {
	var sb strings.Builder
	for _, part := range strings.FieldsFunc(string(typ), func(r rune) bool { return r == '.' || r == '-' }) {
		sb.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return sb.String()
}

// batch is one GetRecords answer of one shard.
type batch struct {
	Recs     []eventadapter.Record
	Accepted []int // calls whose reservation.accepted is in the batch
}

// batches splits the workload's events over shards (a call's events stay
// on one shard, in order) and each shard's events into batches of at most
// size records, like Kinesis GetRecords answers.
func (w workload) batches(shards, size int) [][]batch {
	out := make([][]batch, shards)
	seq := make([]int, shards)
	for _, ev := range w.Events {
		s := ev.Call % shards
		bs := out[s]
		if len(bs) == 0 || len(bs[len(bs)-1].Recs) == size {
			bs = append(bs, batch{Recs: make([]eventadapter.Record, 0, size)})
		}
		b := &bs[len(bs)-1]
		seq[s]++
		b.Recs = append(b.Recs, eventadapter.Record{Data: ev.Data,
			Origin: fmt.Sprintf("kinesis:bench/shardId-%012d/%d", s, seq[s])})
		if ev.Type == callrec.EventReservationAccepted {
			b.Accepted = append(b.Accepted, ev.Call)
		}
		out[s] = bs
	}
	return out
}
