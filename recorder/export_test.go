package recorder

// Hooks for the external tests (package recorder_test).

// FlushAll runs one round of what Run does every FlushInterval: write, sync
// and acknowledge what can be written of every active recording.
func (n *Node) FlushAll() { n.flushAll() }

// Abandon simulates the recorder process dying (kill -9): nothing is
// flushed or finished; the recordings' files are closed, as the kernel
// closes a dead process's files. The node must not be used afterwards.
func (n *Node) Abandon() {
	for _, r := range n.snapshotActive() {
		r.ioMu.Lock()
		r.finished = true
		_ = r.blob.Close()
		r.ioMu.Unlock()
	}
}
