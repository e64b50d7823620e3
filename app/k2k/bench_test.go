package k2k_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"mixmatch/app/config"
	"mixmatch/app/k2k"
	"mixmatch/app/k2k/k2ktest"
	"mixmatch/app/keystone"
	"mixmatch/app/tokencache"
)

// BenchmarkK2KExchanges: 10 users calling 3 SPs through 2 worker processes. The
// metric that matters is exchanges/1000req; with one exchange per user, SP and token
// lifetime it falls as requests grow, and memcached halves it against per-process
// memory caches.
func BenchmarkK2KExchanges(b *testing.B) {
	for _, backend := range []string{"memory", "memcached"} {
		b.Run(backend, func(b *testing.B) {
			idp := k2ktest.NewIdP()
			defer idp.Close()
			var sps []*config.SP
			for i := 0; i < 3; i++ {
				sp := k2ktest.NewSP(idp.MetadataURL())
				defer sp.Close()
				id := fmt.Sprintf("sp%d", i)
				idp.SPs[id] = keystone.ServiceProvider{ID: id, AuthURL: sp.AuthURL(), SPURL: sp.SPURL()}
				sps = append(sps, &config.SP{Name: id, SPName: id})
			}
			users := make([]string, 10)
			for i := range users {
				users[i] = fmt.Sprintf("gAAAAAB-user-%d", i)
				idp.AddUser(users[i], fmt.Sprintf("user%d", i), fmt.Sprintf("p%d", i), time.Hour)
			}
			prefix := fmt.Sprintf("bench%d", time.Now().UnixNano())
			var workers []*k2k.Exchanger
			var locals []*keystone.Client
			for w := 0; w < 2; w++ {
				var be tokencache.Backend = tokencache.NewMemory(nil)
				if backend == "memcached" {
					m, err := tokencache.NewMemcached([]string{"127.0.0.1:11211"}, "bench-secret-"+prefix)
					if err != nil {
						b.Fatal(err)
					}
					be = m
				}
				cache := tokencache.New(be, nil)
				local := keystone.NewClient(keystone.Options{AuthURL: idp.AuthURL(), Cache: cache, CacheTime: 10 * time.Minute, HTTP: clients.LocalKeystone(),
					Credentials: keystone.Credentials{Username: "admin", Password: idp.ServicePassword, ProjectName: "admin", UserDomainID: "default", ProjectDomainID: "default"}})
				locals = append(locals, local)
				workers = append(workers, k2k.New(k2k.Options{Local: local, Cache: cache, VerifyAssertions: true, HTTP: clients.Keystone}))
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w, u, s := rand.IntN(2), rand.IntN(len(users)), rand.IntN(len(sps))
					user, err := locals[w].Validate(context.Background(), users[u])
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := workers[w].Token(context.Background(), sps[s], user, users[u], ""); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			exchanges := workers[0].Stats.Exchanges.Load() + workers[1].Stats.Exchanges.Load()
			b.ReportMetric(float64(exchanges)*1000/float64(b.N), "exchanges/1000req")
			b.ReportMetric(float64(exchanges)/float64(len(users)*len(sps)), "exchanges/user·SP")
		})
	}
}
