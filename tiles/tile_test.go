package tiles

import (
	"fmt"
	"math"
	"testing"

	"github.com/gridmap/gridmap"
)

func TestParseTile(t *testing.T) {
	tests := []struct {
		name    string
		z, x, y string
		want    Tile
		wantErr string
	}{
		{"the world", "0", "0", "0.mvt", Tile{0, 0, 0}, ""},
		{"lower Manhattan at 14", "14", "4823", "6160.mvt", Tile{14, 4823, 6160}, ""},
		{"last tile of zoom 3", "3", "7", "7", Tile{3, 7, 7}, ""},
		{"x past the edge", "3", "8", "0", Tile{}, "tile x \"8\" must be a whole number from 0 to 7"},
		{"negative y", "3", "0", "-1", Tile{}, "tile y \"-1\" must be a whole number from 0 to 7"},
		{"zoom too deep", "23", "0", "0", Tile{}, "tile z \"23\" must be a whole number from 0 to 22"},
		{"not a number", "a", "0", "0", Tile{}, "tile z \"a\" must be a whole number from 0 to 22"},
		{"leading zero", "03", "0", "0", Tile{}, "tile z \"03\" must be a whole number from 0 to 22"},
		{"plus sign", "+3", "0", "0", Tile{}, "tile z \"+3\" must be a whole number from 0 to 22"},
		{"empty", "3", "", "0", Tile{}, "tile x \"\" must be a whole number from 0 to 7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTile(tc.z, tc.x, tc.y)
			if tc.wantErr != "" {
				if gridmap.ErrorCode(err) != gridmap.EINVALID || gridmap.ErrorMessage(err) != tc.wantErr {
					t.Fatalf("error %v, want EINVALID %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseTile(f *testing.F) {
	for _, s := range [][3]string{{"0", "0", "0"}, {"14", "4823", "6160.mvt"}, {"22", "4194303", "4194303"}, {"-1", "x", "9999999999999999999"}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, z, x, y string) {
		tile, err := ParseTile(z, x, y)
		if err != nil {
			if gridmap.ErrorCode(err) != gridmap.EINVALID {
				t.Fatalf("error %v is not EINVALID", err)
			}
			return
		}
		n := 1 << tile.Z
		if tile.Z < 0 || tile.Z > gridmap.MaxZoom || tile.X < 0 || tile.X >= n || tile.Y < 0 || tile.Y >= n {
			t.Fatalf("accepted %v", tile)
		}
		if got := fmt.Sprint(tile); got != fmt.Sprintf("%s/%s/%s", z, x, trimMVT(y)) {
			t.Fatalf("%q/%q/%q read as %s", z, x, y, got)
		}
	})
}

func trimMVT(y string) string {
	if len(y) > 4 && y[len(y)-4:] == ".mvt" {
		return y[:len(y)-4]
	}
	return y
}

func TestBoundAndCovering(t *testing.T) {
	world := Tile{0, 0, 0}.Bound()
	if math.Abs(world[0]+20037508.342789244) > 1e-6 || math.Abs(world[3]-20037508.342789244) > 1e-6 {
		t.Errorf("world tile %v", world)
	}
	// Lower Manhattan, around Wall Street, is tile 14/4823/6160.
	x0, y0, x1, y1 := Covering(14, [4]float64{-74.0095, 40.7055, -74.0090, 40.7060}, 0)
	if x0 != 4823 || x1 != 4823 || y0 != 6160 || y1 != 6160 {
		t.Errorf("covering %d..%d, %d..%d; want 4823, 6160", x0, x1, y0, y1)
	}
	x0, y0, x1, y1 = Covering(10, [4]float64{-180, -85.06, 180, 85.06}, 0.5)
	if x0 != 0 || y0 != 0 || x1 != 1023 || y1 != 1023 {
		t.Errorf("the world at 10 covers %d..%d, %d..%d", x0, x1, y0, y1)
	}
}

func TestBandFor(t *testing.T) {
	for z, want := range map[int]int{0: 0, 5: 0, 6: 1, 10: 3, 11: 3, 12: 4, 13: 4, 14: -1, 22: -1} {
		if got := BandFor(z); got != want {
			t.Errorf("BandFor(%d) = %d, want %d", z, got, want)
		}
	}
	// Half a 256-pixel tile pixel at zoom 13 is about 9.55 m.
	if tol := Tolerance(4); math.Abs(tol-9.554628535647032) > 1e-9 {
		t.Errorf("tolerance at 13 = %g", tol)
	}
}
