package gridmap

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Party organisation kinds: a functional branch (功能型党支部) or a party
// group (党小组), the two forms grid-level organisations take ("支部建在网格上，
// 党小组建在微网格上").
const (
	PartyBranch = "branch"
	PartyGroup  = "group"
)

// Limits of a party organisation's text, so that one row stays small.
const (
	MaxPartyText    = 200 // characters of a name, role or phone number
	MaxPartyMembers = 500
)

// PartySecretary is the secretary of a party organisation.
type PartySecretary struct {
	Name  string `json:"name"`
	Phone string `json:"phone,omitempty"`
}

// UnmarshalJSON takes the secretary as {"name", "phone"}, or as a bare
// name ("secretary": "王书记"), the shorthand API.md's body uses.
func (s *PartySecretary) UnmarshalJSON(b []byte) error {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '"' {
		*s = PartySecretary{}
		return json.Unmarshal(t, &s.Name)
	}
	type plain PartySecretary // without this method
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return err
	}
	*s = PartySecretary(p)
	return nil
}

// PartyMember is one member of a party organisation.
type PartyMember struct {
	Name  string `json:"name"`
	Role  string `json:"role,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// PartyOrg is the party organisation (党组织) of one grid of a
// comprehensive layer. It belongs to the grid's code, which survives
// boundary versions, as the grid's people do. Street is the code of the
// street-tier grid above it whose organisation it belongs to (left out:
// the nearest street-tier grid above it). Version,
// UpdatedAt and UpdatedBy are read-only.
type PartyOrg struct {
	Layer     string         `json:"layer"`
	Grid      string         `json:"grid"`
	Kind      string         `json:"kind"`
	Name      string         `json:"name"`
	Secretary PartySecretary `json:"secretary"`
	Members   []PartyMember  `json:"members"`
	Street    string         `json:"street,omitempty"`
	Version   int            `json:"version"`
	UpdatedAt time.Time      `json:"updated_at"`
	UpdatedBy string         `json:"updated_by,omitempty"`
}

// Check returns EINVALID saying what to fix in a party organisation's own
// fields (kind, name, secretary, members); the grid and the street are the
// store's to check against the layer.
func (p *PartyOrg) Check() error {
	if p.Kind != PartyBranch && p.Kind != PartyGroup {
		return Errorf(EINVALID, `kind %q must be "branch" (功能型党支部) or "group" (党小组)`, p.Kind)
	}
	if p.Members == nil {
		p.Members = []PartyMember{}
	}
	if len(p.Members) > MaxPartyMembers {
		return Errorf(EINVALID, "members lists %d people; at most %d", len(p.Members), MaxPartyMembers)
	}
	fields := []partyField{{"name", p.Name, true}, {"secretary.name", p.Secretary.Name, true},
		{"secretary.phone", p.Secretary.Phone, false}, {"street", p.Street, false}}
	for i, m := range p.Members {
		at := "members[" + itoa(i) + "]."
		fields = append(fields, partyField{at + "name", m.Name, true}, partyField{at + "role", m.Role, false},
			partyField{at + "phone", m.Phone, false})
	}
	for _, f := range fields {
		if err := CheckText(f.what, f.v); err != nil {
			return err
		}
		if f.required && strings.TrimSpace(f.v) == "" {
			return Errorf(EINVALID, "%s is required", f.what)
		}
		if utf8.RuneCountInString(f.v) > MaxPartyText {
			return Errorf(EINVALID, "%s has %d characters; at most %d", f.what, utf8.RuneCountInString(f.v), MaxPartyText)
		}
		if strings.HasSuffix(f.what, "phone") && f.v != "" && !isPhone(f.v) {
			return Errorf(EINVALID, "%s %q must be a phone number: digits, spaces, +, - and parentheses only", f.what, f.v)
		}
	}
	return nil
}

// partyField is one text field of a party organisation, named as the
// client sends it.
type partyField struct {
	what, v  string
	required bool
}

// isPhone reports whether v is made of the characters of phone numbers.
func isPhone(v string) bool {
	digits := 0
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune(" +-()", r):
		default:
			return false
		}
	}
	return digits >= 3
}

func itoa(i int) string { return strconv.Itoa(i) }

// PartyCoverage says which grids of one level of a layer have a party
// organisation (党组织覆盖率). Coverage is WithParty / Grids, nil when the
// level has no grids. Rows lists every grid, or only those without an
// organisation when asked for the missing ones; Grids and WithParty always
// count them all.
type PartyCoverage struct {
	Layer     string             `json:"layer"`
	Level     string             `json:"level"`
	Grids     int                `json:"grids"`
	WithParty int                `json:"with_party"`
	Coverage  *float64           `json:"coverage"`
	Rows      []PartyCoverageRow `json:"rows"`
}

// PartyCoverageRow is one grid of a coverage list with its organisation
// (nil when it has none).
type PartyCoverageRow struct {
	Code  string    `json:"code"`
	Name  string    `json:"name"`
	Party *PartyOrg `json:"party"`
}

// Meeting is a joint meeting (党建联席会议) of a street: the organisations
// of the street consult on reports that need more than the street
// (会商研判) and decide which to hand up a tier (提级办理). ID, CreatedBy and
// CreatedAt are read-only.
type Meeting struct {
	ID        int64         `json:"id"`
	Layer     string        `json:"layer"`
	Street    string        `json:"street"`
	HeldAt    time.Time     `json:"held_at"`
	Title     string        `json:"title"`
	Attendees []string      `json:"attendees"`
	Items     []MeetingItem `json:"items"`
	CreatedBy string        `json:"created_by,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
}

// MeetingItem is one report a meeting consulted on, its decision, and
// whether the meeting handed it up a tier. EventID (the report's consult
// event) and Tier (the report's tier after the meeting) are read-only.
type MeetingItem struct {
	Report   int64  `json:"report"`
	Decision string `json:"decision"`
	Escalate bool   `json:"escalate"`
	EventID  int64  `json:"event_id,omitempty"`
	Tier     string `json:"tier,omitempty"`
}

// Limits of a meeting.
const (
	MaxMeetingItems     = 100
	MaxMeetingAttendees = 200
	MaxMeetingText      = 2000 // characters of a title or a decision
)

// Check returns EINVALID saying what to fix in a meeting's own fields;
// whether each report may be taken up is the store's to check.
func (m *Meeting) Check() error {
	switch {
	case m.Layer == "":
		return Errorf(EINVALID, `layer is required: the comprehensive layer the street belongs to`)
	case m.Street == "":
		return Errorf(EINVALID, `street is required: the code of the street-tier grid whose joint meeting this is`)
	case m.HeldAt.IsZero():
		return Errorf(EINVALID, `held_at is required: when the meeting was held, RFC 3339 such as 2026-01-31T15:00:00+08:00`)
	case m.HeldAt.After(time.Now().Add(24 * time.Hour)):
		return Errorf(EINVALID, "held_at %s is in the future; record a meeting once it is held", m.HeldAt.Format(time.RFC3339))
	case strings.TrimSpace(m.Title) == "":
		return Errorf(EINVALID, `title is required`)
	case len(m.Items) == 0:
		return Errorf(EINVALID, `items is required: at least one {"report": id, "decision": "...", "escalate": bool}`)
	case len(m.Items) > MaxMeetingItems:
		return Errorf(EINVALID, "items lists %d reports; at most %d a meeting", len(m.Items), MaxMeetingItems)
	case len(m.Attendees) > MaxMeetingAttendees:
		return Errorf(EINVALID, "attendees lists %d; at most %d", len(m.Attendees), MaxMeetingAttendees)
	case utf8.RuneCountInString(m.Title) > MaxMeetingText:
		return Errorf(EINVALID, "title has more than %d characters", MaxMeetingText)
	}
	if m.Attendees == nil {
		m.Attendees = []string{}
	}
	texts := map[string]string{"layer": m.Layer, "street": m.Street, "title": m.Title}
	for i, a := range m.Attendees {
		texts["attendees["+itoa(i)+"]"] = a
		if strings.TrimSpace(a) == "" || utf8.RuneCountInString(a) > MaxPartyText {
			return Errorf(EINVALID, "attendees[%d] must be a name or unit of 1 to %d characters", i, MaxPartyText)
		}
	}
	seen := map[int64]bool{}
	for i, it := range m.Items {
		texts["items["+itoa(i)+"].decision"] = it.Decision
		switch {
		case it.Report <= 0:
			return Errorf(EINVALID, "items[%d].report must be a report id", i)
		case seen[it.Report]:
			return Errorf(EINVALID, "items[%d]: report %d is listed twice; list each report once", i, it.Report)
		case utf8.RuneCountInString(it.Decision) > MaxMeetingText:
			return Errorf(EINVALID, "items[%d].decision has more than %d characters", i, MaxMeetingText)
		}
		seen[it.Report] = true
	}
	for what, v := range texts {
		if err := CheckText(what, v); err != nil {
			return err
		}
	}
	return nil
}

// PartyService keeps grids' party organisations and streets' joint
// meetings. Scoped callers (in the context) act only inside their subtree.
type PartyService interface {
	// PutParty creates or replaces the party organisation of a grid; with
	// ifMatch, only while its version is *ifMatch (0: while it has none).
	// p gets its version and time. Returns ENOTFOUND for an unknown layer
	// or grid, EINVALID for a departmental layer, bad fields or a street
	// that is not a street-tier grid above the grid, EPRECONDITION for a
	// stale ifMatch, EFORBIDDEN for a grid outside the caller's scope. A
	// Street left out becomes the nearest street-tier grid above the grid.
	PutParty(ctx context.Context, p *PartyOrg, ifMatch *int) (created bool, err error)
	// Party returns a grid's party organisation. Returns ENOTFOUND for an
	// unknown grid or one without an organisation, EFORBIDDEN outside the
	// caller's scope.
	Party(ctx context.Context, layer, code string) (*PartyOrg, error)
	// DeleteParty removes a grid's party organisation; with ifMatch only
	// at that version. Returns ENOTFOUND, EPRECONDITION, EFORBIDDEN.
	DeleteParty(ctx context.Context, layer, code string, ifMatch *int) error
	// PartyCoverage lists the current grids of one level ("": the finest
	// grid-tier level) with their organisations, only those the caller's
	// scope holds. Returns ENOTFOUND for an unknown layer, EINVALID for a
	// level the layer does not have.
	PartyCoverage(ctx context.Context, layer, level string, missingOnly bool) (*PartyCoverage, error)
	// AddMeeting records a joint meeting: for each item an event
	// dispatch.ActionConsult on its report, and the escalation of those
	// marked, all in one transaction. m gets its id and its items their
	// events and tiers. Returns EINVALID for bad fields or a street that is
	// not a street-tier grid, EUNPROCESSABLE naming a report the meeting
	// may not take up (below the district tier, outside the street, done,
	// or not in a state that can escalate), EFORBIDDEN for a street
	// outside the caller's scope.
	AddMeeting(ctx context.Context, m *Meeting) error
	// Meetings lists the meetings of a layer, of one street when street is
	// not "", newest first, those of streets in the caller's scope only.
	// Returns ENOTFOUND for an unknown layer.
	Meetings(ctx context.Context, layer, street string) ([]*Meeting, error)
}
