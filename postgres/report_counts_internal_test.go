package postgres

import (
	"reflect"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
)

// TestCountsFromSumsAllowsWindowAndCategoryOnly: every field of a report
// filter, a field added later included, keeps the counts from the daily
// sums unless it is the window, the category or one counts ignore.
func TestCountsFromSumsAllowsWindowAndCategoryOnly(t *testing.T) {
	allowed := map[string]bool{"Since": true, "Until": true, "Category": true, "Status": true, "Sort": true, "Limit": true, "Cursor": true}
	if !countsFromSums(gridmap.ReportFilter{}) {
		t.Error("no filter: not from the sums")
	}
	typ := reflect.TypeFor[gridmap.ReportFilter]()
	for i := range typ.NumField() {
		field := typ.Field(i)
		var f gridmap.ReportFilter
		v := reflect.ValueOf(&f).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString("x")
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Int, reflect.Int64:
			v.SetInt(1)
		case reflect.Pointer:
			v.Set(reflect.New(field.Type.Elem()))
		case reflect.Slice:
			v.Set(reflect.MakeSlice(field.Type, 1, 1))
		default:
			t.Fatalf("field %s of kind %s: give it a value here", field.Name, v.Kind())
		}
		if got := countsFromSums(f); got != allowed[field.Name] {
			t.Errorf("%s set: from the sums %v, want %v", field.Name, got, allowed[field.Name])
		}
	}
	now := time.Now()
	if !countsFromSums(gridmap.ReportFilter{Since: &now, Until: &now, Category: "c", Status: "open", Limit: 5}) {
		t.Error("a window and a category: not from the sums")
	}
}
