package callrec

// Keys used in structured log lines, so every component names things alike.
// Caller phone numbers and other personal data are never logged.
const (
	LogKeyComponent = "component"
	LogKeyINUM      = "inum"
	LogKeyCallSID   = "call_sid"
	LogKeyStreamSID = "stream_sid"
	LogKeyNode      = "node"
	LogKeyRemote    = "remote"
	LogKeyErr       = "err"
	LogKeyReason    = "reason"
	LogKeyTrack     = "track"
)

// Version is the build version, set at link time with
// -ldflags "-X callrec.Version=…".
var Version = "dev"
