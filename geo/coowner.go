package geo

import "github.com/gridmap/gridmap"

// CoOwnerReason says why a grid distM metres from a report's point shares
// it, and whether it does: a grid within OnBoundaryM is on the boundary
// (its distance then counts as 0), else one within the point's accuracy is
// within_accuracy, else one within the tolerance is within_tolerance;
// farther grids do not share it. Every path that names co-owners (the
// lookup index, as-of lookups, lines and polygons, re-routing) asks this.
func CoOwnerReason(distM, accuracyM, toleranceM float64) (reason string, d float64, ok bool) {
	switch {
	case distM <= OnBoundaryM:
		return gridmap.ReasonOnBoundary, 0, true
	case accuracyM > 0 && distM <= accuracyM:
		return gridmap.ReasonWithinAccuracy, distM, true
	case distM <= toleranceM:
		return gridmap.ReasonWithinTolerance, distM, true
	}
	return "", distM, false
}
