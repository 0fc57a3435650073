package dispatch

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gridmap/gridmap"
)

// DefaultOutsideCoverageM is how far outside every grid a report may be and
// still go to the nearest grid (flagged outside_coverage); farther, it goes
// to the district's duty desk.
const DefaultOutsideCoverageM = 500

// Policy is how reports are assigned, set once per deployment.
type Policy struct {
	OutsideCoverageM float64
	Calendar         *Calendar
}

// Department is what the policy knows of a department: its name and the
// departmental layer naming its units, if any.
type Department struct {
	Name  string
	Layer string
}

// AssignInput is everything an assignment is computed from.
type AssignInput struct {
	Layer *gridmap.Layer
	// Answer is the lookup of the report's point in Layer. For a line or
	// polygon location, Crossed lists the grids it crosses with their
	// shares (largest first) and Answer is the lookup of its largest share's
	// representative point.
	Answer  *gridmap.LayerAnswer
	Crossed []gridmap.Owner
	// Near lists, for a line or polygon, the grids it does not cross that
	// lie within the tolerance or accuracy, with distance and reason.
	Near []gridmap.Owner
	// Chains gives the chain (root first) of every grid named in Crossed.
	Chains map[string][]gridmap.GridRef
	// Units holds, per departmental layer, the lookup at the report's point.
	Units       map[string]*gridmap.LayerAnswer
	Category    *gridmap.Category
	Departments map[string]Department
	Urgent      bool
	ReportedAt  time.Time
}

// Tiers are the tiers a report can be handled at, lowest first.
var Tiers = []string{gridmap.TierGrid, gridmap.TierStreet, gridmap.TierDistrict, gridmap.TierCity}

// tierRank is a tier's place in Tiers (an unknown tier ranks lowest).
func tierRank(t string) int { return max(slices.Index(Tiers, t), 0) }

// Assign computes who owns a report, at which tier they coordinate, which
// departments handle it, and when it is due.
func (p *Policy) Assign(in AssignInput) (*gridmap.Assignment, error) {
	a := &gridmap.Assignment{Layer: in.Layer.ID, BoundaryVersion: in.Answer.DataVersion,
		CoOwners: []gridmap.Owner{}, Departments: []gridmap.DepartmentUnit{}}
	var why []string
	chains := [][]gridmap.GridRef{}

	switch {
	case len(in.Crossed) > 0:
		for i, c := range in.Crossed {
			o := c
			o.Chain = in.Chains[c.Code]
			if i == 0 {
				a.Primary = &o
				why = append(why, fmt.Sprintf("%.0f%% of the location lies in %s %s", 100*c.Share, c.Code, c.Name))
			} else {
				o.Reason = gridmap.ReasonCrossed
				a.CoOwners = append(a.CoOwners, o)
				why = append(why, fmt.Sprintf("it crosses into %s (%.0f%%)", c.Code, 100*c.Share))
			}
			chains = append(chains, o.Chain)
		}
		for _, n := range in.Near {
			o := n
			o.Chain = in.Chains[n.Code]
			a.CoOwners = append(a.CoOwners, o)
			chains = append(chains, o.Chain)
			why = append(why, fmt.Sprintf("%s is %.1f m away (%s)", n.Code, n.DistanceM, n.Reason))
		}
	case len(in.Answer.Chain) > 0:
		f := in.Answer.Finest()
		a.Primary = &gridmap.Owner{Code: f.Code, Name: f.Name, Level: f.Level, Chain: in.Answer.Chain}
		chains = append(chains, in.Answer.Chain)
		why = append(why, fmt.Sprintf("the point is in %s %s (%s)", f.Code, f.Name, f.Level))
	case in.Answer.Nearest != nil && in.Answer.Nearest.DistanceM <= p.outsideM():
		n := in.Answer.Nearest
		a.Primary = &gridmap.Owner{Code: n.Code, Name: n.Name, Level: n.Level, DistanceM: n.DistanceM}
		a.Flags = append(a.Flags, gridmap.FlagOutsideCoverage)
		why = append(why, fmt.Sprintf("the point is outside every grid, %.0f m from %s %s, the nearest", n.DistanceM, n.Code, n.Name))
	default:
		a.Flags = append(a.Flags, gridmap.FlagOutsideCoverage, gridmap.FlagDutyDesk)
		if in.Answer.Nearest != nil {
			why = append(why, fmt.Sprintf("the point is %.0f m from the nearest grid, farther than %.0f m: the district duty desk takes it",
				in.Answer.Nearest.DistanceM, p.outsideM()))
		} else {
			why = append(why, "the layer has no grids: the duty desk takes it")
		}
	}
	if len(in.Crossed) == 0 {
		for _, c := range in.Answer.CoOwners {
			o := gridmap.Owner{Code: c.Code, Name: c.Name, Level: c.Level, DistanceM: c.DistanceM, Reason: c.Reason}
			a.CoOwners = append(a.CoOwners, o)
			why = append(why, fmt.Sprintf("%s is %.1f m away (%s)", c.Code, c.DistanceM, c.Reason))
		}
	}
	if a.Primary != nil && a.Primary.Chain == nil {
		a.Primary.Chain = in.Chains[a.Primary.Code]
	}
	for i := range a.CoOwners {
		if a.CoOwners[i].Chain == nil {
			a.CoOwners[i].Chain = in.Chains[a.CoOwners[i].Code]
		}
		if len(in.Crossed) == 0 {
			chains = append(chains, a.CoOwners[i].Chain)
		}
	}

	a.Tier = TierOf(in.Layer, chains)
	if slices.Contains(a.Flags, gridmap.FlagDutyDesk) {
		a.Tier = gridmap.TierDistrict
	}
	switch {
	case len(chains) > 1 && a.Tier == gridmap.TierCity:
		why = append(why, "the owners are in different districts: the city coordinates")
	case len(chains) > 1:
		why = append(why, "the owners meet at the "+a.Tier+" tier")
	}

	if in.Category != nil {
		for _, code := range in.Category.Departments {
			d := gridmap.DepartmentUnit{Code: code}
			info := in.Departments[code]
			d.Name = info.Name
			if ans := in.Units[info.Layer]; info.Layer != "" && ans != nil {
				if f := ans.Finest(); f != nil {
					unit := *f
					d.Unit = &unit
				} else if ans.Nearest != nil {
					unit := ans.Nearest.GridRef
					d.Unit = &unit
				}
			}
			a.Departments = append(a.Departments, d)
		}
		var raised bool
		if a.Tier, raised = TierWithDepartments(a.Tier, len(a.Departments)); raised {
			why = append(why, "several departments take part: at least the street coordinates")
		}
		var names []string
		for _, d := range a.Departments {
			n := d.Code
			if d.Unit != nil {
				n += " (" + d.Unit.Code + ")"
			}
			names = append(names, n)
		}
		if len(names) > 0 {
			why = append(why, "category "+in.Category.Code+" goes to "+strings.Join(names, ", "))
		}
		limit := in.Category.Limit
		if in.Urgent && in.Category.UrgentLimit != nil {
			limit = *in.Category.UrgentLimit
		}
		due, err := Due(in.ReportedAt, limit, p.Calendar)
		if err != nil {
			return nil, err
		}
		a.DueAt = due
		why = append(why, fmt.Sprintf("due in %g %s", limit.Value, strings.ReplaceAll(limit.Clock, "_", " ")))
		if err := SetStep(a, gridmap.StatusReported, in.Category, in.ReportedAt, p.Calendar); err != nil {
			return nil, err
		}
	}
	a.Explanation = strings.Join(why, "; ") + "."
	return a, nil
}

func (p *Policy) outsideM() float64 {
	if p.OutsideCoverageM > 0 {
		return p.OutsideCoverageM
	}
	return DefaultOutsideCoverageM
}

// TierAtLeast reports whether tier t is at or above tier min.
func TierAtLeast(t, min string) bool { return tierRank(t) >= tierRank(min) }

// TierWithDepartments raises tier to the street when several departments
// take part in a report (one grid cannot coordinate departments); raised
// says it did.
func TierWithDepartments(tier string, departments int) (string, bool) {
	if departments > 1 && !TierAtLeast(tier, gridmap.TierStreet) {
		return gridmap.TierStreet, true
	}
	return tier, false
}

// TierOf is the tier of the lowest common ancestor of the owners' chains:
// with one owner, the tier of its own level; with owners under different
// top-level grids (different districts), the city.
func TierOf(layer *gridmap.Layer, chains [][]gridmap.GridRef) string {
	var common []gridmap.GridRef
	seen := 0
	for _, c := range chains {
		if len(c) == 0 {
			continue
		}
		if seen++; seen == 1 {
			common = c
			continue
		}
		n := 0
		for n < len(common) && n < len(c) && common[n].Code == c[n].Code {
			n++
		}
		common = common[:n]
	}
	switch {
	case seen == 0:
		return gridmap.TierDistrict
	case len(common) == 0:
		return gridmap.TierCity
	}
	lca := common[len(common)-1]
	if t, ok := layer.Tiers[lca.Level]; ok {
		return t
	}
	return gridmap.TierGrid
}
