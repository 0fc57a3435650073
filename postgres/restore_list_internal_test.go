package postgres

import (
	"strings"
	"testing"
)

// TestPartitionKeysFirst: partitions' constraints move before the first
// constraint; everything else, foreign keys and checks included, keeps its
// place; a list without constraints is left as it is.
func TestPartitionKeysFirst(t *testing.T) {
	list := []string{
		"257; 1259 125340 TABLE public track_points gridmap\n",
		"284; 1259 125871 TABLE public track_points_20261201 gridmap\n",
		"4379; 0 0 TABLE ATTACH public track_points_20261201 gridmap\n",
		"5151; 0 125871 TABLE DATA public track_points_20261201 gridmap\n",
		"4700; 2606 125300 CONSTRAINT public accounts accounts_pkey gridmap\n",
		"4725; 2606 125344 CONSTRAINT public track_points track_points_pkey gridmap\n",
		"4839; 2606 125877 CONSTRAINT public track_points_20261201 track_points_20261201_pkey gridmap\n",
		"4840; 2606 125878 CHECK CONSTRAINT public track_points_20261201 track_points_20261201_t gridmap\n",
		"4900; 2606 125900 FK CONSTRAINT public track_points_20261201 track_points_20261201_fk gridmap\n",
		"4837; 0 0 INDEX ATTACH public track_points_20261201_pkey gridmap\n",
	}
	got := partitionKeysFirst(list)
	want := []string{list[0], list[1], list[2], list[3], list[6], list[4], list[5], list[7], list[8], list[9]}
	if strings.Join(got, "") != strings.Join(want, "") {
		t.Errorf("reordered:\n%s\nwant:\n%s", strings.Join(got, ""), strings.Join(want, ""))
	}
	// The first constraint is itself a partition's key: nothing moves.
	first := []string{list[2], list[6], list[5]}
	if got := partitionKeysFirst(first); strings.Join(got, "") != strings.Join(first, "") {
		t.Errorf("with a partition's key first:\n%s", strings.Join(got, ""))
	}
	none := list[:4]
	if got := partitionKeysFirst(none); strings.Join(got, "") != strings.Join(none, "") {
		t.Errorf("without constraints:\n%s", strings.Join(got, ""))
	}
}
