package callrec

import (
	"fmt"
	"strconv"
)

// INUM is an interaction number: the 16-digit identifier a recorder assigns to
// each recording. Layout: 4 digits of recorder node id, 11 digits of that
// node's persisted counter, and a Luhn check digit, so a mistyped INUM is
// caught instead of silently finding nothing. Node ids are unique within a
// pool, so INUMs are unique without any coordination between recorders.
type INUM string

// Limits of the INUM fields.
const (
	MaxNodeID      = 9999
	MaxINUMCounter = 99_999_999_999
)

// NewINUM builds the INUM for a node's counter value.
func NewINUM(node uint16, counter uint64) (INUM, error) {
	if node == 0 || node > MaxNodeID {
		return "", Errorf(EINVALID, "node id %d out of range 1..%d", node, MaxNodeID)
	}
	if counter == 0 || counter > MaxINUMCounter {
		return "", Errorf(EINVALID, "inum counter %d out of range 1..%d", counter, MaxINUMCounter)
	}
	body := fmt.Sprintf("%04d%011d", node, counter)
	return INUM(body + strconv.Itoa(luhnDigit(body))), nil
}

// ParseINUM validates s (length, digits, check digit) and returns it as an INUM.
func ParseINUM(s string) (INUM, error) {
	if len(s) != 16 {
		return "", Errorf(EINVALID, "inum %q: want 16 digits", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", Errorf(EINVALID, "inum %q: want digits only", s)
		}
	}
	if int(s[15]-'0') != luhnDigit(s[:15]) {
		return "", Errorf(EINVALID, "inum %q: check digit does not match", s)
	}
	n := INUM(s)
	if n.Node() == 0 || n.Counter() == 0 {
		return "", Errorf(EINVALID, "inum %q: node and counter must be non-zero", s)
	}
	return n, nil
}

// Node returns the recorder node id encoded in the INUM (0 if malformed).
func (n INUM) Node() uint16 {
	if len(n) != 16 {
		return 0
	}
	v, _ := strconv.ParseUint(string(n[:4]), 10, 16)
	return uint16(v)
}

// Counter returns the node counter encoded in the INUM (0 if malformed).
func (n INUM) Counter() uint64 {
	if len(n) != 16 {
		return 0
	}
	v, _ := strconv.ParseUint(string(n[4:15]), 10, 64)
	return v
}

// String returns the INUM's digits.
func (n INUM) String() string { return string(n) }

// luhnDigit returns the Luhn check digit for the decimal string body.
func luhnDigit(body string) int {
	sum := 0
	double := true // the check digit will sit to the right, so the last body digit is doubled
	for i := len(body) - 1; i >= 0; i-- {
		d := int(body[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return (10 - sum%10) % 10
}
