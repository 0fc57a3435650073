package postgres

import (
	"fmt"
	"testing"
	"unsafe"
)

// TestTextsKeepOneCopy: a text read again is the copy kept the first time;
// past textsKept distinct texts, new ones are still given right but not
// kept, and those kept before stay shared.
func TestTextsKeepOneCopy(t *testing.T) {
	tx := newTexts()
	first := tx.of([]byte("第3网格"))
	again := tx.of([]byte("第3网格"))
	if again != "第3网格" || unsafe.StringData(again) != unsafe.StringData(first) {
		t.Fatalf("the same text read twice gave %q at %p and %p: want one copy", again, unsafe.StringData(first), unsafe.StringData(again))
	}
	if e := tx.of(nil); e != "" {
		t.Fatalf("no bytes gave %q, want the empty text", e)
	}
	for i := len(tx.kept); i < textsKept; i++ {
		tx.of([]byte(fmt.Sprint("name ", i)))
	}
	if len(tx.kept) != textsKept {
		t.Fatalf("%d texts kept, want %d", len(tx.kept), textsKept)
	}
	late := tx.of([]byte("网格 late"))
	lateAgain := tx.of([]byte("网格 late"))
	if late != "网格 late" || lateAgain != "网格 late" {
		t.Fatalf("a text past the cap gave %q and %q", late, lateAgain)
	}
	if len(tx.kept) != textsKept {
		t.Fatalf("%d texts kept past the cap of %d", len(tx.kept), textsKept)
	}
	if s := tx.of([]byte("第3网格")); unsafe.StringData(s) != unsafe.StringData(first) {
		t.Fatal("a text kept before the cap is no longer shared")
	}
}
