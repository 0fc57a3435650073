package demo_test

import (
	"context"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/demo"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
	"github.com/paulmach/orb/encoding/wkb"
	"github.com/twpayne/go-geos"
)

// province generates the n districts of seed, held in order.
func province(t testing.TB, seed uint64, n int) []*demo.District {
	t.Helper()
	var ds []*demo.District
	err := demo.GenerateProvince(context.Background(), seed, n, 0, func(k int, d *demo.District) error {
		if k != len(ds) {
			t.Errorf("district %d handed over after %d others", k, len(ds))
		}
		ds = append(ds, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestDistrictCode(t *testing.T) {
	for _, c := range []struct {
		k    int
		want string
	}{{0, "330106"}, {1, "330107"}, {93, "330199"}, {94, "330201"}, {demo.MaxDistricts - 1, "339999"}} {
		if got := demo.DistrictCode(c.k); got != c.want {
			t.Errorf("DistrictCode(%d) = %s, want %s", c.k, got, c.want)
		}
	}
}

func TestGenerateProvince(t *testing.T) {
	const n = 3
	ds := province(t, demo.DefaultSeed, n)
	layers := demo.Layers(n)

	t.Run("codes are unique and match the layer's pattern", func(t *testing.T) {
		for _, l := range layers {
			re := regexp.MustCompile(l.CodePattern)
			seen := map[string]int{}
			for k, d := range ds {
				for _, f := range d.Grids[l.ID] {
					if prev, dup := seen[f.Code]; dup {
						t.Errorf("%s: code %s is in districts %d and %d", l.ID, f.Code, prev+1, k+1)
					}
					seen[f.Code] = k
					if !re.MatchString(f.Code) {
						t.Errorf("%s: code %s does not match %s", l.ID, f.Code, l.CodePattern)
					}
				}
			}
		}
	})

	t.Run("every grid is under its district's code", func(t *testing.T) {
		for k, d := range ds {
			fs := d.Grids[demo.LayerID]
			if root := fs[0]; root.Code != demo.DistrictCode(k) || root.Parent != "" || root.Level != "district" {
				t.Fatalf("district %d starts with %s %s (parent %q), want district %s", k+1, root.Level, root.Code, root.Parent, demo.DistrictCode(k))
			}
			for _, f := range fs[1:] {
				if !strings.HasPrefix(f.Code, demo.DistrictCode(k)) || !strings.HasPrefix(f.Code, f.Parent) || f.Parent == "" {
					t.Errorf("district %d: %s (parent %q) is not under %s", k+1, f.Code, f.Parent, demo.DistrictCode(k))
				}
			}
			for _, f := range d.Grids[demo.PoliceLayerID] {
				if f.Parent != "" && !strings.HasPrefix(f.Code, f.Parent+"-") {
					t.Errorf("district %d: beat %s is not under its station %s", k+1, f.Code, f.Parent)
				}
			}
		}
	})

	t.Run("no two districts overlap, and a gap lies between them", func(t *testing.T) {
		ctx := geos.NewContext()
		outlines := make([]*geos.Geom, n)
		for k, d := range ds {
			b, err := wkb.Marshal(d.Grids[demo.LayerID][0].Geometry)
			if err != nil {
				t.Fatal(err)
			}
			if outlines[k], err = ctx.NewGeomFromWKB(b); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			for j := i + 1; j < n; j++ {
				if outlines[i].Intersects(outlines[j]) {
					t.Errorf("districts %d and %d touch or overlap", i+1, j+1)
				}
				if d := outlines[i].Distance(outlines[j]); d < 0.01 {
					t.Errorf("districts %d and %d are %.4f degrees apart, want a gap of at least 0.01", i+1, j+1, d)
				}
			}
		}
	})

	t.Run("the first district is the demo district", func(t *testing.T) {
		want := generate(t)
		for _, id := range []string{demo.LayerID, demo.PoliceLayerID} {
			got := ds[0].Grids[id]
			if len(got) != len(want.Grids[id]) {
				t.Fatalf("%s: %d grids, the demo district has %d", id, len(got), len(want.Grids[id]))
			}
			for i, f := range want.Grids[id] {
				if !reflect.DeepEqual(got[i], f) {
					t.Fatalf("%s: grid %d is %s %q, the demo district's is %s %q (or their geometry, people or attributes differ)", id, i, got[i].Code, got[i].Name, f.Code, f.Name)
				}
			}
		}
	})

	t.Run("the other districts are drawn from seeds of their own", func(t *testing.T) {
		streets := func(d *demo.District) []string {
			var names []string
			for _, f := range d.Grids[demo.LayerID] {
				if f.Level == "street" {
					names = append(names, f.Name)
				}
			}
			return names
		}
		for k := 1; k < n; k++ {
			if ds[k].Grids[demo.LayerID][0].Name == ds[0].Grids[demo.LayerID][0].Name || slices.Equal(streets(ds[k]), streets(ds[0])) {
				t.Errorf("district %d has district 1's name or streets: %s %v", k+1, ds[k].Grids[demo.LayerID][0].Name, streets(ds[k]))
			}
		}
	})

	t.Run("one district is the demo district with its layers", func(t *testing.T) {
		one := province(t, demo.DefaultSeed, 1)
		if !reflect.DeepEqual(one[0].Layers, generate(t).Layers) {
			t.Errorf("layers of a province of one: %+v", one[0].Layers)
		}
	})
}

func TestGenerateProvinceStops(t *testing.T) {
	t.Run("an error of fn stops the generation", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := demo.GenerateProvince(context.Background(), 1, 5, 1, func(int, *demo.District) error {
			calls++
			return stop
		})
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("GenerateProvince returned %v after %d calls, want stop after 1", err, calls)
		}
	})
	t.Run("a number of districts out of range is refused", func(t *testing.T) {
		for _, n := range []int{0, demo.MaxDistricts + 1} {
			err := demo.GenerateProvince(context.Background(), 1, n, 0, func(int, *demo.District) error { return nil })
			if gridmap.ErrorCode(err) != gridmap.EINVALID {
				t.Errorf("%d districts: %v, want EINVALID", n, err)
			}
		}
	})
}

// BenchmarkGenerateProvince generates a province district after district
// without holding it, as LoadProvince does, with the default workers. Run it
// with -benchtime=1x, and pick a size by name:
// -bench 'GenerateProvince/districts=40$'.
func BenchmarkGenerateProvince(b *testing.B) {
	for _, n := range []int{1, 4, 40} {
		b.Run("districts="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			grids := 0
			for b.Loop() {
				grids = 0
				err := demo.GenerateProvince(context.Background(), demo.DefaultSeed, n, 0, func(_ int, d *demo.District) error {
					grids += len(d.Grids[demo.LayerID]) + len(d.Grids[demo.PoliceLayerID])
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(grids), "grids")
		})
	}
}

// BenchmarkLoadProvince loads a province into a database of its own
// through the import (LoadProvince) and builds the lookup index of it
// (Locator.Load), reporting the seconds of each. Run it with
// -benchtime=1x: -bench 'LoadProvince/districts=40$'.
func BenchmarkLoadProvince(b *testing.B) {
	for _, n := range []int{4, 8, 40} {
		b.Run("districts="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				db := pgtest.NewDB(b)
				ctx := context.Background()
				start := time.Now()
				_, results, err := demo.LoadProvince(ctx, postgres.NewLayerStore(db), postgres.NewGridStore(db), demo.DefaultSeed, n, 0)
				if err != nil {
					b.Fatal(err)
				}
				loaded := time.Since(start)
				start = time.Now()
				if err := postgres.NewLocator(db).Load(ctx); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(loaded.Seconds(), "load-s")
				b.ReportMetric(time.Since(start).Seconds(), "index-s")
				b.ReportMetric(float64(results[0].Created+results[1].Created), "grids")
			}
		})
	}
}
