package geo

import (
	"math"
	"testing"

	"github.com/gridmap/gridmap"
)

func TestInMainlandChina(t *testing.T) {
	cases := []struct {
		place    string
		lon, lat float64
		want     bool
	}{
		{"Beijing", 116.397, 39.909, true},
		{"Shanghai", 121.473, 31.230, true},
		{"Hangzhou West Lake", 120.148, 30.242, true},
		{"Shenzhen Futian", 114.055, 22.542, true},
		{"Shenzhen Shekou", 113.912, 22.544, true},
		{"Zhuhai", 113.577, 22.271, true},
		{"Xiamen", 118.089, 24.479, true},
		{"Fuzhou", 119.296, 26.074, true},
		{"Haikou, Hainan", 110.330, 20.022, true},
		{"Sanya, Hainan", 109.512, 18.252, true},
		{"Harbin", 126.535, 45.803, true},
		{"Mohe", 122.539, 52.972, true},
		{"Manzhouli", 117.380, 49.597, true},
		{"Urumqi", 87.617, 43.826, true},
		{"Kashgar", 75.990, 39.470, true},
		{"Lhasa", 91.117, 29.647, true},
		{"Jinghong, Xishuangbanna", 100.797, 22.008, true},
		{"Hong Kong Central", 114.158, 22.282, false},
		{"Hong Kong airport", 113.915, 22.308, false},
		{"Hong Kong Sheung Shui", 114.128, 22.501, false},
		{"Macau", 113.543, 22.199, false},
		{"Taipei", 121.565, 25.033, false},
		{"Kaohsiung", 120.302, 22.627, false},
		{"Penghu", 119.566, 23.569, false},
		{"Kinmen", 118.318, 24.437, false},
		{"Matsu Nangan", 119.950, 26.153, false},
		{"Seoul", 126.978, 37.566, false},
		{"Pyongyang", 125.754, 39.039, false},
		{"Vladivostok", 131.886, 43.116, false},
		{"Ulaanbaatar", 106.918, 47.921, false},
		{"Hanoi", 105.854, 21.028, false},
		{"Kathmandu", 85.324, 27.717, false},
		{"Almaty", 76.889, 43.238, false},
		{"Tokyo", 139.692, 35.690, false},
		{"New York", -73.985, 40.758, false},
	}
	for _, c := range cases {
		if got := InMainlandChina(c.lon, c.lat); got != c.want {
			t.Errorf("%s (%g %g): in mainland %v, want %v", c.place, c.lon, c.lat, got, c.want)
		}
	}
}

// Reference pairs published with the widely used eviltransform library
// (WGS84 -> GCJ-02), and a WGS84 / GCJ-02 / BD-09 triple published with
// another converter's tests.
func TestGCJ02ReferencePairs(t *testing.T) {
	pairs := []struct {
		place          string
		wgsLon, wgsLat float64
		gcjLon, gcjLat float64
	}{
		{"Shanghai", 121.5272106, 31.1774276, 121.531541859215, 31.17530398364597},
		{"Shenzhen", 113.912316, 22.543847, 113.9171764808363, 22.540796131694766},
		{"Beijing", 116.377817, 39.911954, 116.38404722455657, 39.91334545536069},
	}
	for _, p := range pairs {
		x, y := WGS84ToGCJ02(p.wgsLon, p.wgsLat)
		if d := metres(x, y, p.gcjLon, p.gcjLat); d > 0.05 {
			t.Errorf("%s: forward off the reference by %.3f m", p.place, d)
		}
		x, y = GCJ02ToWGS84(p.gcjLon, p.gcjLat)
		if d := metres(x, y, p.wgsLon, p.wgsLat); d > 0.05 {
			t.Errorf("%s: inverse off the reference by %.3f m", p.place, d)
		}
	}
	wgs, gcj, bd := [2]float64{121.0917077, 30.6107779}, [2]float64{121.09626935575027, 30.608604331756705},
		[2]float64{121.10271732371203, 30.61484572185035}
	if x, y := WGS84ToGCJ02(wgs[0], wgs[1]); metres(x, y, gcj[0], gcj[1]) > 0.05 {
		t.Errorf("WGS84 to GCJ-02 off the reference by %.3f m", metres(x, y, gcj[0], gcj[1]))
	}
	if x, y := WGS84ToBD09(wgs[0], wgs[1]); metres(x, y, bd[0], bd[1]) > 0.05 {
		t.Errorf("WGS84 to BD-09 off the reference by %.3f m", metres(x, y, bd[0], bd[1]))
	}
	if x, y := BD09ToWGS84(bd[0], bd[1]); metres(x, y, wgs[0], wgs[1]) > 0.05 {
		t.Errorf("BD-09 to WGS84 off the reference by %.3f m", metres(x, y, wgs[0], wgs[1]))
	}
}

func metres(x1, y1, x2, y2 float64) float64 {
	kx, ky := MetresPerDegree(y1)
	return math.Hypot((x1-x2)*kx, (y1-y2)*ky)
}

// TestRoundTrip converts points across China forth and back: the inverse
// lands within 1 cm (it does far better) of where it started.
func TestRoundTrip(t *testing.T) {
	worst := 0.0
	for lon := 75.0; lon <= 134; lon += 0.73 {
		for lat := 18.5; lat <= 53; lat += 0.61 {
			if !InMainlandChina(lon, lat) {
				continue
			}
			gx, gy := WGS84ToGCJ02(lon, lat)
			if !InMainlandChina(gx, gy) {
				continue // shifted across the outline: not a round trip case
			}
			wx, wy := GCJ02ToWGS84(gx, gy)
			worst = math.Max(worst, metres(wx, wy, lon, lat))
			bx, by := WGS84ToBD09(lon, lat)
			if !InMainlandChina(bx, by) {
				continue
			}
			wx, wy = BD09ToWGS84(bx, by)
			worst = math.Max(worst, metres(wx, wy, lon, lat))
		}
	}
	if worst > 0.01 {
		t.Errorf("worst round trip error %.4f m, want under 1 cm", worst)
	}
	t.Logf("worst round trip error %.2e m", worst)
}

func TestToWGS84(t *testing.T) {
	// Outside the mainland every system is WGS84: Hong Kong and Taipei
	// come back unchanged.
	for _, crs := range []string{gridmap.CRSGCJ02, gridmap.CRSBD09} {
		for _, p := range [][2]float64{{114.158, 22.282}, {121.565, 25.033}} {
			x, y, err := ToWGS84(crs, p[0], p[1])
			if err != nil || x != p[0] || y != p[1] {
				t.Errorf("%s %v: got %g %g %v, want unchanged", crs, p, x, y, err)
			}
		}
	}
	x, y, err := ToWGS84(gridmap.CRSCGCS2000, 120.1, 30.2)
	if err != nil || x != 120.1 || y != 30.2 {
		t.Errorf("cgcs2000 must pass through, got %g %g %v", x, y, err)
	}
	if _, _, err := ToWGS84("utm50", 1, 2); gridmap.ErrorCode(err) != gridmap.EINVALID {
		t.Errorf("unknown crs: %v, want EINVALID", err)
	}
}
