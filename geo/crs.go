package geo

import (
	"math"

	"github.com/gridmap/gridmap"
)

// The GCJ-02 obfuscation is a published forward formula on the Krasovsky
// ellipsoid; BD-09 adds a rotation and offset on top. Neither has a closed
// inverse, so coordinates are brought back to WGS84 by fixed-point
// iteration on the forward formula (w <- w - (forward(w) - given)), which
// converges because the shift varies slowly: a few steps reach 1e-10
// degrees (about 0.01 mm).
const (
	gcjA  = 6378245.0
	gcjEE = 0.00669342162296594323
	bdXPi = math.Pi * 3000.0 / 180.0
)

// ToWGS84 converts a point given in crs (one of the gridmap.CRS* names, ""
// meaning WGS84) to WGS84. GCJ-02 and BD-09 are shifted only inside
// mainland China; elsewhere (Hong Kong, Macau, Taiwan and abroad) they are
// WGS84 already. Returns EINVALID for an unknown crs or a coordinate that
// is not a finite longitude within ±180 and latitude within ±90: every
// system gridmap takes is in degrees.
func ToWGS84(crs string, lon, lat float64) (float64, float64, error) {
	if err := gridmap.CheckLonLat(lon, lat); err != nil {
		return 0, 0, err
	}
	switch crs {
	case "", gridmap.CRSWGS84, gridmap.CRSCGCS2000:
		return lon, lat, nil
	case gridmap.CRSGCJ02:
		x, y := GCJ02ToWGS84(lon, lat)
		return x, y, nil
	case gridmap.CRSBD09:
		x, y := BD09ToWGS84(lon, lat)
		return x, y, nil
	}
	return 0, 0, gridmap.Errorf(gridmap.EINVALID, "crs %q is not one of wgs84, cgcs2000, gcj02, bd09", crs)
}

// WGS84ToGCJ02 applies the GCJ-02 shift to a point in mainland China.
func WGS84ToGCJ02(lon, lat float64) (float64, float64) {
	if !InMainlandChina(lon, lat) {
		return lon, lat
	}
	return gcjForward(lon, lat)
}

// GCJ02ToWGS84 removes the GCJ-02 shift from a point in mainland China.
// Round trip error is below 1e-9 degrees.
func GCJ02ToWGS84(lon, lat float64) (float64, float64) {
	if !InMainlandChina(lon, lat) {
		return lon, lat
	}
	return invert(gcjForward, lon, lat)
}

// GCJ02ToBD09 applies Baidu's shift on top of GCJ-02.
func GCJ02ToBD09(lon, lat float64) (float64, float64) {
	if !InMainlandChina(lon, lat) {
		return lon, lat
	}
	return bdForward(lon, lat)
}

// BD09ToWGS84 removes Baidu's and then the GCJ-02 shift.
func BD09ToWGS84(lon, lat float64) (float64, float64) {
	if !InMainlandChina(lon, lat) {
		return lon, lat
	}
	gx, gy := invert(bdForward, lon, lat)
	return invert(gcjForward, gx, gy)
}

// WGS84ToBD09 applies the GCJ-02 and then Baidu's shift.
func WGS84ToBD09(lon, lat float64) (float64, float64) {
	if !InMainlandChina(lon, lat) {
		return lon, lat
	}
	return bdForward(gcjForward(lon, lat))
}

func invert(forward func(x, y float64) (float64, float64), lon, lat float64) (float64, float64) {
	x, y := lon, lat
	for i := 0; i < 30; i++ {
		fx, fy := forward(x, y)
		dx, dy := fx-lon, fy-lat
		x, y = x-dx, y-dy
		if math.Abs(dx) < 1e-11 && math.Abs(dy) < 1e-11 {
			break
		}
	}
	return x, y
}

func gcjForward(lon, lat float64) (float64, float64) {
	x, y := lon-105.0, lat-35.0
	common := (20*math.Sin(6*x*math.Pi) + 20*math.Sin(2*x*math.Pi)) * 2 / 3
	dLat := -100 + 2*x + 3*y + 0.2*y*y + 0.1*x*y + 0.2*math.Sqrt(math.Abs(x)) + common +
		(20*math.Sin(y*math.Pi)+40*math.Sin(y/3*math.Pi))*2/3 +
		(160*math.Sin(y/12*math.Pi)+320*math.Sin(y*math.Pi/30))*2/3
	dLon := 300 + x + 2*y + 0.1*x*x + 0.1*x*y + 0.1*math.Sqrt(math.Abs(x)) + common +
		(20*math.Sin(x*math.Pi)+40*math.Sin(x/3*math.Pi))*2/3 +
		(150*math.Sin(x/12*math.Pi)+300*math.Sin(x/30*math.Pi))*2/3
	rad := lat / 180 * math.Pi
	magic := 1 - gcjEE*math.Sin(rad)*math.Sin(rad)
	sq := math.Sqrt(magic)
	dLat = dLat * 180 / ((gcjA * (1 - gcjEE)) / (magic * sq) * math.Pi)
	dLon = dLon * 180 / (gcjA / sq * math.Cos(rad) * math.Pi)
	return lon + dLon, lat + dLat
}

func bdForward(lon, lat float64) (float64, float64) {
	z := math.Sqrt(lon*lon+lat*lat) + 0.00002*math.Sin(lat*bdXPi)
	theta := math.Atan2(lat, lon) + 0.000003*math.Cos(lon*bdXPi)
	return z*math.Cos(theta) + 0.0065, z*math.Sin(theta) + 0.006
}

// InMainlandChina reports whether a point lies in mainland China, where
// Chinese map providers shift coordinates: inside the outline of the
// mainland and Hainan (its coastal waters included) and outside Hong Kong,
// Macau, and Taiwan with Penghu, Kinmen and Matsu. The outline follows the
// borders to within a few kilometres, enough to tell cities apart: the
// shift itself is only a few hundred metres.
func InMainlandChina(lon, lat float64) bool {
	if lon < 73 || lon > 135.2 || lat < 17.5 || lat > 53.7 {
		return false
	}
	if !ringContains(mainlandOutline, lon, lat) {
		return false
	}
	for _, r := range notMainland {
		if ringContains(r, lon, lat) {
			return false
		}
	}
	return true
}

// ringContains is the even-odd test against an open ring.
func ringContains(r [][2]float64, x, y float64) bool {
	in := false
	for i, j := 0, len(r)-1; i < len(r); j, i = i, i+1 {
		xi, yi, xj, yj := r[i][0], r[i][1], r[j][0], r[j][1]
		if (yi > y) != (yj > y) && x < xi+(y-yi)*(xj-xi)/(yj-yi) {
			in = !in
		}
	}
	return in
}

// mainlandOutline runs clockwise from the Amur near Mohe: east along the
// Amur and south along the Ussuri and Tumen, west up the Yalu, down the
// coast offshore (Hainan included), west along the borders with Vietnam,
// Laos and Myanmar, the Himalaya, north along the Pamirs and Tian Shan,
// and east along Kazakhstan, Mongolia and the Argun back to the start.
var mainlandOutline = [][2]float64{
	{121.3, 53.3}, {122.4, 53.5}, {123.6, 53.55}, {125.2, 53.2}, {126.3, 52.5}, {126.6, 51.8},
	{127.5, 50.3}, {128.5, 49.6}, {130.0, 48.9}, {131.0, 47.7}, {132.6, 47.7}, {134.7, 48.4},
	{134.2, 47.3}, {134.0, 46.8}, {133.2, 45.9}, {132.9, 45.3}, {132.1, 45.0}, {131.0, 44.9},
	{131.3, 44.4}, {131.3, 43.4}, {130.6, 42.42}, {130.25, 42.75}, {129.9, 43.0}, {129.4, 42.45},
	{128.9, 42.05}, {128.1, 42.0}, {128.2, 41.45}, {126.9, 41.8}, {126.2, 41.1}, {125.3, 40.6},
	{124.4, 40.05}, {124.2, 39.8},
	// Yellow Sea, East China Sea and Taiwan Strait, offshore.
	{123.8, 39.0}, {123.8, 38.0}, {123.5, 37.2}, {122.6, 35.2}, {122.0, 34.0}, {123.0, 32.0},
	{123.2, 31.0}, {123.0, 29.5}, {122.5, 28.5}, {121.3, 27.3}, {120.6, 26.8}, {120.1, 25.3},
	{119.2, 24.2}, {118.0, 23.2}, {117.0, 22.8}, {116.3, 22.4}, {115.5, 22.3}, {114.8, 21.9},
	// South China Sea, around Hainan, Gulf of Tonkin.
	{113.5, 21.6}, {112.0, 21.3}, {111.3, 20.5}, {111.6, 19.5}, {110.2, 17.9}, {109.0, 17.9},
	{108.4, 18.4}, {108.4, 19.3}, {108.3, 20.6}, {108.05, 21.45},
	// Vietnam, Laos, Myanmar.
	{107.4, 21.6}, {106.7, 21.97}, {106.7, 22.5}, {106.6, 22.9}, {105.9, 23.0}, {105.3, 23.4},
	{104.8, 23.15}, {104.3, 22.75}, {103.96, 22.5}, {103.3, 22.8}, {102.6, 22.7}, {102.14, 22.4},
	{101.7, 22.45}, {101.6, 21.9}, {101.75, 21.15}, {101.2, 21.3}, {100.2, 21.45}, {99.9, 22.1},
	{99.3, 22.1}, {99.5, 22.9}, {98.9, 23.2}, {98.7, 24.0}, {97.8, 23.99}, {97.55, 24.75},
	{98.2, 25.35}, {98.55, 26.1}, {98.75, 27.5}, {98.3, 27.9}, {97.6, 28.3}, {97.34, 28.22},
	// India, Bhutan, Nepal, along the line of actual control.
	{96.9, 28.4}, {96.2, 29.2}, {95.4, 29.05}, {94.6, 29.3}, {93.7, 28.7}, {92.6, 27.9},
	{91.65, 27.85}, {91.0, 28.1}, {90.3, 28.3}, {89.6, 28.2}, {89.1, 27.6}, {89.0, 27.3},
	{88.85, 27.35}, {88.9, 27.9}, {88.1, 27.95}, {86.93, 27.99}, {86.0, 28.2}, {85.1, 28.5},
	{84.0, 28.9}, {83.3, 29.5}, {82.0, 30.2}, {81.1, 30.2}, {80.3, 30.8}, {79.5, 31.0},
	{78.8, 31.6}, {78.7, 32.5}, {79.0, 32.9}, {78.7, 33.9}, {78.1, 34.7}, {78.0, 35.45},
	// Karakoram, Pamirs, Tian Shan.
	{77.8, 35.5}, {76.8, 35.7}, {76.0, 36.1}, {75.5, 36.6}, {75.4, 36.9}, {74.9, 37.2},
	{74.85, 38.5}, {73.8, 39.1}, {73.65, 39.45}, {73.9, 39.7}, {74.8, 40.4}, {75.4, 40.55},
	{76.6, 40.4}, {77.8, 41.0}, {78.8, 41.6}, {80.2, 42.05}, {80.8, 43.0}, {80.4, 44.15},
	{80.8, 45.1}, {82.55, 45.2}, {82.3, 45.6}, {83.0, 47.2}, {85.6, 47.05}, {85.6, 48.2},
	{86.7, 49.0}, {87.35, 49.17},
	// Mongolia, then the Argun.
	{87.8, 49.1}, {88.1, 48.5}, {90.0, 47.9}, {90.9, 46.6}, {91.0, 45.4}, {93.5, 44.9},
	{95.4, 44.25}, {96.4, 42.7}, {100.0, 42.65}, {101.8, 42.5}, {104.0, 41.8}, {105.0, 41.6},
	{107.0, 42.4}, {110.4, 42.8}, {111.95, 43.65}, {113.6, 44.75}, {116.0, 45.7}, {117.4, 46.6},
	{119.9, 46.8}, {119.7, 47.5}, {118.5, 47.95}, {117.4, 47.65}, {115.6, 47.9}, {116.0, 48.9},
	{116.7, 49.85}, {117.7, 49.55}, {119.2, 50.3}, {119.9, 51.3}, {120.7, 52.5},
}

// notMainland are places inside the outline where providers do not shift.
var notMainland = [][][2]float64{
	// Hong Kong: from the Deep Bay line along the Shenzhen River and Mirs Bay.
	{{113.83, 22.14}, {113.83, 22.38}, {113.90, 22.44}, {113.95, 22.49}, {114.03, 22.51}, {114.08, 22.525},
		{114.12, 22.535}, {114.16, 22.555}, {114.21, 22.56}, {114.23, 22.55}, {114.30, 22.56}, {114.45, 22.56},
		{114.46, 22.50}, {114.51, 22.44}, {114.51, 22.14}},
	// Macau peninsula, Taipa, Cotai and Coloane.
	{{113.527, 22.217}, {113.555, 22.217}, {113.560, 22.20}, {113.600, 22.18}, {113.600, 22.105},
		{113.545, 22.105}, {113.540, 22.14}, {113.527, 22.19}},
	// Taiwan with Penghu, Green Island and Orchid Island.
	{{119.15, 23.1}, {119.15, 23.85}, {120.6, 25.2}, {121.5, 25.45}, {122.2, 25.7}, {122.2, 24.0},
		{121.9, 21.8}, {120.7, 21.7}},
	// Kinmen and Lesser Kinmen.
	{{118.21, 24.40}, {118.24, 24.47}, {118.30, 24.54}, {118.50, 24.50}, {118.47, 24.38}, {118.30, 24.36}},
	// Matsu: Nangan and Beigan, Juguang, Dongyin.
	{{119.88, 26.12}, {120.06, 26.12}, {120.06, 26.27}, {119.88, 26.27}},
	{{119.90, 25.92}, {120.02, 25.92}, {120.02, 26.00}, {119.90, 26.00}},
	{{120.45, 26.33}, {120.54, 26.33}, {120.54, 26.40}, {120.45, 26.40}},
	// Wuqiu.
	{{119.43, 24.96}, {119.47, 24.96}, {119.47, 25.00}, {119.43, 25.00}},
}
