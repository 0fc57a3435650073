package dispatch

import (
	"strings"
	"testing"

	"github.com/gridmap/gridmap"
)

func TestCheckConsult(t *testing.T) {
	state := func(status, tier string) State {
		return State{Status: status, Assignment: gridmap.Assignment{Layer: "l", Tier: tier,
			Primary:  &gridmap.Owner{Code: "G1", Chain: []gridmap.GridRef{{Code: "D"}, {Code: "S1"}, {Code: "G1"}}},
			CoOwners: []gridmap.Owner{{Code: "G2", Chain: []gridmap.GridRef{{Code: "D"}, {Code: "S2"}, {Code: "G2"}}}}}}
	}
	for _, tc := range []struct {
		name     string
		s        State
		street   string
		escalate bool
		says     string
	}{
		{"district tier in the street", state(gridmap.StatusRegistered, gridmap.TierDistrict), "S1", true, ""},
		{"a co-owner's street", state(gridmap.StatusReported, gridmap.TierDistrict), "S2", false, ""},
		{"escalated to the city", state(gridmap.StatusInProgress, gridmap.TierCity), "S1", true, ""},
		{"grid tier", state(gridmap.StatusRegistered, gridmap.TierGrid), "S1", false, "at the grid tier"},
		{"street tier", state(gridmap.StatusRegistered, gridmap.TierStreet), "S1", false, "at the street tier"},
		{"another street", state(gridmap.StatusRegistered, gridmap.TierDistrict), "S3", false, "not in street S3"},
		{"closed", state(gridmap.StatusClosed, gridmap.TierDistrict), "S1", false, "open reports only"},
		{"cannot escalate yet", state(gridmap.StatusReported, gridmap.TierDistrict), "S1", true, "cannot be handed up"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckConsult(7, tc.s, "l", tc.street, tc.escalate)
			if tc.says == "" && err != nil || tc.says != "" && (gridmap.ErrorCode(err) != gridmap.EUNPROCESSABLE ||
				!strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "report 7")) {
				t.Errorf("CheckConsult: %v, want %q", err, tc.says)
			}
		})
	}
	if out := Consult(state(gridmap.StatusDispatched, gridmap.TierDistrict)); out.State.Status != gridmap.StatusDispatched || len(out.Tasks) != 0 {
		t.Errorf("Consult changed the state: %+v", out)
	}
}
