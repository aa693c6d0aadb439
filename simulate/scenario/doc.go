// Package scenario plays scripted Twilio Flex calls against a recorder, end
// to end: the TaskRouter CloudEvents Event Streams would deliver (through a
// Sink: the signed webhook sink today, Kinesis later), and on Twilio's side
// (simulate.Twilio) the calls, the conference, a Media Stream failing, and
// the hang-up. Each Play makes fresh SIDs and runs in real time, so the
// streams the recorder starts carry real audio; the returned Call says what
// was played and what a correct recorder must show (Expect).
//
// The events mirror testdata/twilio/event-streams field for field
// (CloudEvents 1.0, TaskRouter.WDSEvent/4, task and worker attributes as
// JSON strings); they carry the time they happen and increasing task and
// reservation versions. The scripts follow the tracker's reading of Flex
// (tracker/scenarios_test.go): the customer's leg is call_sid from the
// start, Flex writes the conference into the attributes after the first
// accept, a transfer is task.transfer-* events plus a reservation for the
// target, and an internal call is one between two Voice SDK clients.
package scenario
