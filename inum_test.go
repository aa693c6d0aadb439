package callrec_test

import (
	"os/exec"
	"strings"
	"testing"

	"callrec"
)

func TestINUM(t *testing.T) {
	n, err := callrec.NewINUM(12, 345)
	if err != nil {
		t.Fatal(err)
	}
	if len(n) != 16 || n.Node() != 12 || n.Counter() != 345 || !strings.HasPrefix(string(n), "001200000000345") {
		t.Fatalf("NewINUM(12, 345) = %s (node %d, counter %d)", n, n.Node(), n.Counter())
	}
	if got, err := callrec.ParseINUM(string(n)); err != nil || got != n {
		t.Fatalf("ParseINUM(%s) = %s, %v", n, got, err)
	}
	// Every single-digit typo and every adjacent transposition is caught.
	for i := 0; i < 16; i++ {
		for d := byte('0'); d <= '9'; d++ {
			b := []byte(n)
			if b[i] == d {
				continue
			}
			b[i] = d
			if _, err := callrec.ParseINUM(string(b)); err == nil {
				t.Errorf("typo %s accepted", b)
			}
		}
		if i < 15 && n[i] != n[i+1] && !(n[i] == '0' && n[i+1] == '9' || n[i] == '9' && n[i+1] == '0') {
			b := []byte(n)
			b[i], b[i+1] = b[i+1], b[i]
			if _, err := callrec.ParseINUM(string(b)); err == nil {
				t.Errorf("transposition %s accepted", b)
			}
		}
	}
	for _, bad := range []string{"", "123", "00120000000034x1", "00000000000003450", "0000000000000000", "00120000000000000"} {
		if _, err := callrec.ParseINUM(bad); err == nil || callrec.ErrorCode(err) != callrec.EINVALID {
			t.Errorf("ParseINUM(%q) = %v, want EINVALID", bad, err)
		}
	}
	for _, c := range []struct {
		node    uint16
		counter uint64
	}{{0, 1}, {10000, 1}, {1, 0}, {1, callrec.MaxINUMCounter + 1}} {
		if _, err := callrec.NewINUM(c.node, c.counter); err == nil {
			t.Errorf("NewINUM(%d, %d) accepted", c.node, c.counter)
		}
	}
	last, err := callrec.NewINUM(callrec.MaxNodeID, callrec.MaxINUMCounter)
	if err != nil || last.Node() != callrec.MaxNodeID || last.Counter() != callrec.MaxINUMCounter {
		t.Errorf("largest INUM %s, %v", last, err)
	}
}

func FuzzParseINUM(f *testing.F) {
	for _, s := range []string{"0001000000000033", "9999999999999999", "", "abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := callrec.ParseINUM(s)
		if err != nil {
			return
		}
		again, err := callrec.NewINUM(n.Node(), n.Counter())
		if err != nil || again != n {
			t.Fatalf("ParseINUM accepted %q, but NewINUM(%d, %d) = %q, %v", s, n.Node(), n.Counter(), again, err)
		}
	})
}

// TestRootImportsStdlibOnly enforces the layout rule: the domain package
// depends on the standard library alone.
func TestRootImportsStdlibOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "callrec" {
			t.Errorf("package callrec depends on %s", p)
		}
	}
}

func TestErrorCode(t *testing.T) {
	err := callrec.Errorf(callrec.ENOTFOUND, "no recording %s", "x")
	if callrec.ErrorCode(err) != callrec.ENOTFOUND || callrec.ErrorMessage(err) != "no recording x" {
		t.Errorf("code %q message %q", callrec.ErrorCode(err), callrec.ErrorMessage(err))
	}
	if callrec.ErrorCode(nil) != "" || callrec.ErrorCode(plainErr{}) != callrec.EINTERNAL || callrec.ErrorMessage(plainErr{}) != "internal error" {
		t.Error("non-application errors must map to internal")
	}
}

type plainErr struct{}

func (plainErr) Error() string { return "disk on fire" }
