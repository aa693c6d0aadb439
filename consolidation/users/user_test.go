package users

import "testing"

func TestRoles(t *testing.T) {
	tests := []struct {
		name                string
		u                   User
		seeNorth, seeSouth  bool
		seeEmpty            bool
		canSearch, canAudit bool
	}{
		{"admin", User{Role: Admin}, true, true, true, true, true},
		{"compliance", User{Role: Compliance}, true, true, true, true, false},
		{"supervisor", User{Role: Supervisor, Teams: []string{"north"}}, true, false, false, true, false},
		{"supervisor without teams", User{Role: Supervisor}, false, false, false, true, false},
		{"auditor", User{Role: Auditor}, false, false, false, false, true},
		{"unknown role", User{Role: "root"}, false, false, false, false, false},
		{"disabled admin", User{Role: Admin, Disabled: true}, false, false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := [5]bool{tt.u.CanSee("north"), tt.u.CanSee("south"), tt.u.CanSee(""), tt.u.CanSearch(), tt.u.CanAudit()}
			want := [5]bool{tt.seeNorth, tt.seeSouth, tt.seeEmpty, tt.canSearch, tt.canAudit}
			if got != want {
				t.Fatalf("CanSee(north, south, \"\"), CanSearch, CanAudit = %v, want %v", got, want)
			}
		})
	}
}
