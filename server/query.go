package server

import (
	"net/url"
	"strings"
)

// maxQueryPairs is net/url's limit on the pairs of a query: past it,
// url.ParseQuery (and so echo's QueryParams) reads none.
const maxQueryPairs = 10000

// queryPairs reads a raw URL query pair by pair as url.ParseQuery does,
// without building url.Values: pairs holding ';' or a malformed escape are
// skipped, and a query of more than maxQueryPairs pairs reads as empty.
// Keys and values are unescaped only when they hold '%' or '+'; otherwise
// they are slices of the raw query, so the hot routes read their
// parameters without allocating.
type queryPairs struct{ rest string }

func newQueryPairs(raw string) queryPairs {
	if strings.Count(raw, "&") >= maxQueryPairs {
		return queryPairs{}
	}
	return queryPairs{rest: raw}
}

// next returns the next pair; ok is false at the end.
func (q *queryPairs) next() (key, value string, ok bool) {
	for q.rest != "" {
		var pair string
		pair, q.rest, _ = strings.Cut(q.rest, "&")
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		var err error
		if k, err = unescapeQuery(k); err != nil {
			continue
		}
		if v, err = unescapeQuery(v); err != nil {
			continue
		}
		return k, v, true
	}
	return "", "", false
}

func unescapeQuery(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, nil
	}
	return url.QueryUnescape(s)
}
