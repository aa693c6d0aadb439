// Package bolt is a recorder node's index of its own recordings, kept in a
// single bbolt file in the node's data dir next to the audio.
//
// Each recorder node owns exactly one index. It allocates the node's INUMs
// (the persisted counter lives in the same file and is advanced in the same
// transaction that stores the new recording, so a crash can never hand out an
// INUM twice), stores each recording's metadata and frame accounting, and
// answers the node's lookups: by INUM, by call SID, by stream SID, by time
// window, and the list of recordings still open after a crash.
//
// Why bbolt: the index is local to one process, must survive kill -9 and
// power loss without a repair step (bbolt commits are atomic and fsynced, and
// the file is always consistent), needs ordered keys for the time and SID
// indexes, and must not add a server to operate. An exclusive file lock also
// stops a second process from opening the same data dir. This package is the
// only importer of bbolt in callrec.
//
// Layout (all keys are bytes; times are StartedAt as 8-byte big-endian
// UnixNano, so they sort chronologically):
//
//	meta        "node" → node id (2-byte big-endian), "counter" → last INUM counter (8-byte big-endian)
//	recordings  INUM → JSON of callrec.Recording
//	by_time     time + INUM → empty
//	by_call     CallSID + 0x00 + time + INUM → empty
//	by_stream   StreamSID + 0x00 + INUM → empty
//	open        INUM → empty, for every recording in state "recording"
//
// StartedAt must therefore lie between 1970 and 2262, and SIDs must not
// contain a NUL byte; records that break either rule are refused (EINVALID).
package bolt
