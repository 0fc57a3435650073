package postgres_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/gridmap/gridmap"
	"github.com/gridmap/gridmap/postgres"
	"github.com/gridmap/gridmap/postgres/pgtest"
)

// BenchmarkTokenCheck is what every request with a token pays to find its
// caller, with the store following revocations (so from its cache);
// BenchmarkTokenCheckBaseline is the least any check must do: hash the
// secret. BenchmarkTokenCheckUncached reads the database each time, as
// while the store is not following.
func BenchmarkTokenCheck(b *testing.B) {
	s, secret := benchToken(b, true)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.TokenCaller(ctx, secret); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTokenCheckUncached(b *testing.B) {
	s, secret := benchToken(b, false)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.TokenCaller(ctx, secret); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTokenCheckBaseline(b *testing.B) {
	secret := []byte("gmt_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG")
	b.ReportAllocs()
	for b.Loop() {
		sum := sha256.Sum256(secret)
		if sum[0] == 0 && sum[1] == 0 && sum[2] == 0 && sum[3] == 0 {
			b.Log("unlikely")
		}
	}
}

func benchToken(b *testing.B, following bool) (*postgres.AccessStore, string) {
	b.Helper()
	db := pgtest.Shared(b)
	s := postgres.NewAccessStore(db)
	if following {
		ctx, cancel := context.WithCancel(context.Background())
		b.Cleanup(cancel)
		go s.Follow(ctx)
		<-s.Listening()
	}
	secret, err := s.CreateToken(context.Background(), &gridmap.Token{Role: gridmap.RoleViewer})
	if err != nil {
		b.Fatal(err)
	}
	return s, secret
}
