package gridmap

import (
	"context"
	"slices"
	"strings"
)

// ProblemGap is a part of a parent that none of its children covers.
const ProblemGap = "gap"

// PublishableKinds are the problem kinds a publish may accept with Allow;
// anything else in a draft (a parent that is gone, say) always stops it.
var PublishableKinds = []string{ProblemOverlapsSibling, ProblemOutsideParent, ProblemGap}

// DraftSummary describes a layer's draft against its published grids.
type DraftSummary struct {
	Layer string `json:"layer"`
	// Counts are the draft's grids per level.
	Counts map[string]int `json:"counts"`
	// Created, Changed and Ended count the grids a publish would create,
	// give a new version and end; Unchanged those it would leave.
	Created   int `json:"created"`
	Changed   int `json:"changed"`
	Ended     int `json:"ended"`
	Unchanged int `json:"unchanged"`
	// Problems lists each overlap, spill outside a parent and gap once.
	Problems []Problem `json:"problems"`
	Author   string    `json:"author"`
}

// Publish asks for a layer's draft to replace its published grids.
type Publish struct {
	Reason string   `json:"reason"`
	Author string   `json:"author,omitempty"`
	Allow  []string `json:"allow"`
}

// Check returns EINVALID for an Allow naming a kind that cannot be accepted.
func (p *Publish) Check() error {
	for _, k := range p.Allow {
		if !slices.Contains(PublishableKinds, k) {
			return Errorf(EINVALID, "allow: %q is not a problem kind a publish may accept; use %s", k, strings.Join(PublishableKinds, ", "))
		}
	}
	return nil
}

// Blocking returns the problems Allow does not accept.
func (p *Publish) Blocking(problems []Problem) []Problem {
	var out []Problem
	for _, pr := range problems {
		if !slices.Contains(p.Allow, pr.Kind) || !slices.Contains(PublishableKinds, pr.Kind) {
			out = append(out, pr)
		}
	}
	return out
}

// PublishResult says what publishing a draft did.
type PublishResult struct {
	Layer string `json:"layer"`
	// Versions are the new versions written, by code; Ended the codes whose
	// validity ended.
	Versions    map[string]int `json:"versions"`
	Ended       []string       `json:"ended"`
	Unchanged   int            `json:"unchanged"`
	Rerouted    int            `json:"rerouted"`
	DataVersion int64          `json:"data_version"`
	// Accepted are the problems published because Allow named their kind.
	Accepted []Problem `json:"accepted"`
}

// DraftService keeps a draft per layer: a whole copy of the layer that may
// hold overlaps, gaps and spills, invisible to lookups, assignment, tiles
// and search until it is published. Scoped callers (gridmap.CallerFrom) act
// only on grids inside their scope.
type DraftService interface {
	// Draft summarises the layer's draft. Returns ENOTFOUND when there is none.
	Draft(ctx context.Context, layer string) (*DraftSummary, error)
	// ApplyDraftChangeset applies a changeset to the draft. Overlaps and
	// spills are listed in the result but do not stop it; other problems
	// do (EUNPROCESSABLE). Returns ENOTFOUND without a draft, EPRECONDITION
	// for a stale if_match (draft versions), EFORBIDDEN outside the scope.
	ApplyDraftChangeset(ctx context.Context, layer string, cs *Changeset) (*ChangesetResult, error)
	// ResolveOverlap removes from the other grid of pair what it shares
	// with giveTo. Returns ENOTFOUND, EINVALID when the two do not overlap.
	ResolveOverlap(ctx context.Context, layer string, pair [2]string, giveTo, author string) (*ChangesetResult, error)
	// Publish replaces the published grids by the draft in one transaction
	// and removes the draft. Returns EUNPROCESSABLE with the problems Allow
	// does not accept, ENOTFOUND without a draft.
	Publish(ctx context.Context, layer string, p *Publish) (*PublishResult, error)
	// DraftCoverageOf reports the draft's gaps, overlaps and outside parts
	// under parent (every parent for ""), as CoverageOf does for the
	// published grids. Returns ENOTFOUND without a draft.
	DraftCoverageOf(ctx context.Context, layer, parent string) (*Coverage, error)
	// DiscardDraft removes the draft. Returns ENOTFOUND without one.
	DiscardDraft(ctx context.Context, layer string) error
	// ExportGrids calls each with every current grid (or draft grid) of the
	// layer as a GeoJSON Feature, in code order, streamed from the database:
	// those inside the scope for a scoped caller. Returns ENOTFOUND for an
	// unknown layer or a missing draft.
	ExportGrids(ctx context.Context, layer string, draft bool, each func(feature []byte) error) error
}
