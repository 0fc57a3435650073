package gridmap

import (
	"fmt"
	"regexp"
)

// ProblemInvalidFeature is a feature that could not be decoded at all.
const ProblemInvalidFeature = "invalid_feature"

// FeatureProblem builds a Problem about input feature f.
func FeatureProblem(f *Feature, kind, format string, args ...any) Problem {
	idx := f.Index
	p := Problem{Kind: kind, Index: &idx, Message: fmt.Sprintf(format, args...)}
	if f.Code != "" {
		p.Codes = []string{f.Code}
	}
	return p
}

// CheckFeature checks what can be known of a feature without its neighbours
// or the database: it decoded, has a code matching the layer's pattern, a
// level of the layer, and a parent exactly when its level is not the
// coarsest. codeRE may be nil when the layer has no pattern. Geometry is
// checked separately. Returns nil when the feature passes.
func (l *Layer) CheckFeature(f *Feature, codeRE *regexp.Regexp) *Problem {
	var p Problem
	switch li := l.LevelIndex(f.Level); {
	case f.DecodeError != "":
		p = FeatureProblem(f, ProblemInvalidFeature, "%s", f.DecodeError)
	case f.Code == "":
		p = FeatureProblem(f, ProblemMissingField, "feature has no code: its code property is missing or empty")
	case codeRE != nil && !codeRE.MatchString(f.Code):
		p = FeatureProblem(f, ProblemBadCode, "code %q does not match the layer's code pattern %s", f.Code, l.CodePattern)
	case f.Level == "":
		p = FeatureProblem(f, ProblemMissingField, "feature %s has no level: give one for the whole import (--level) or as a property", f.Code)
	case li < 0:
		p = FeatureProblem(f, ProblemUnknownLevel, "level %q is not one of layer %s's levels %v", f.Level, l.ID, l.Levels)
	case li == 0 && f.Parent != "":
		p = FeatureProblem(f, ProblemUnknownParent, "%s is at the coarsest level %q and cannot have a parent (found %q)", f.Code, f.Level, f.Parent)
	case li > 0 && f.Parent == "":
		p = FeatureProblem(f, ProblemUnknownParent, "%s at level %q needs the code of its parent at a coarser level (%v)", f.Code, f.Level, l.Levels[:li])
	case f.Parent == f.Code:
		p = FeatureProblem(f, ProblemUnknownParent, "%s names itself as its parent", f.Code)
	default:
		return nil
	}
	return &p
}

// CheckParentLevel returns nil when a grid at childLevel may have a parent
// at parentLevel: the parent's level must be coarser than the child's.
func (l *Layer) CheckParentLevel(f *Feature, parentLevel string) *Problem {
	if l.LevelIndex(parentLevel) < l.LevelIndex(f.Level) {
		return nil
	}
	p := FeatureProblem(f, ProblemUnknownParent, "parent %s of %s is at level %q, which is not coarser than %q", f.Parent, f.Code, parentLevel, f.Level)
	return &p
}
