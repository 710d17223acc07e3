package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/erpctl/erpctl/controlplane"
	"github.com/erpctl/erpctl/controlplane/api"
	"github.com/erpctl/erpctl/internal/ident"
	"github.com/erpctl/erpctl/internal/pgtest"
)

// benchAPI serves tenants acme and globex with 100 products each over real HTTP.
func benchAPI(b *testing.B) (srv *httptest.Server, token string) {
	b.Helper()
	p, err := controlplane.Open(b.Context(), controlplane.Config{DatabaseURL: pgtest.NewDB(b), MaxConns: 16})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	for _, slug := range []string{"acme", "globex"} {
		if _, err := p.CreateTenant(b.Context(), controlplane.CreateOptions{Slug: ident.MustParseSlug(slug)}); err != nil {
			b.Fatal(err)
		}
	}
	_, token, err = p.CreateToken(b.Context(), ident.MustParseSlug("acme"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.Pool().Exec(b.Context(), `INSERT INTO tenant_acme.products (sku, name, price)
		SELECT 'S-' || i, 'Product ' || i, i * 1.5 FROM generate_series(1, 100) i`); err != nil {
		b.Fatal(err)
	}
	srv = httptest.NewServer(newHandler(p, api.Config{}))
	b.Cleanup(srv.Close)
	srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 256
	return srv, token
}

func benchRequests(b *testing.B, srv *httptest.Server, token string, status int, next func(i int64) (method, path, body string)) {
	var n atomic.Int64
	client := srv.Client()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			method, path, body := next(n.Add(1))
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			req, _ := http.NewRequest(method, srv.URL+path, rd)
			req.Header.Set("Authorization", "Bearer "+token)
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != status {
				b.Errorf("%s %s: %d", method, path, resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func BenchmarkAPIGetByID(b *testing.B) {
	srv, token := benchAPI(b)
	benchRequests(b, srv, token, 200, func(i int64) (string, string, string) {
		return "GET", fmt.Sprintf("/api/acme/product/products/%d/", i%100+1), ""
	})
}

func BenchmarkAPIListPage20(b *testing.B) {
	srv, token := benchAPI(b)
	benchRequests(b, srv, token, 200, func(i int64) (string, string, string) {
		return "GET", fmt.Sprintf("/api/acme/product/products/?limit=20&offset=%d", i%5*20), ""
	})
}

func BenchmarkAPICreate(b *testing.B) {
	srv, token := benchAPI(b)
	benchRequests(b, srv, token, 201, func(i int64) (string, string, string) {
		return "POST", "/api/acme/product/products/", fmt.Sprintf(`{"sku": "B-%d", "name": "Bench", "price": "9.50"}`, i)
	})
}
