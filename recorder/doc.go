// Package recorder is the IP recorder: it receives streams from media
// adapters over the link protocol, assigns each an INUM, writes stereo μ-law
// WAV files (inbound left, outbound right, placed by chunk and timestamp,
// silence where frames are missing), acknowledges frames only once they are
// written and synced, keeps per-track frame accounting, indexes recordings
// in bbolt, emits STARTED/STOPPED, repairs files after a crash, and serves
// recordings over HTTP.
package recorder
