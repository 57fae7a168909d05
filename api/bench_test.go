package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkHealthGET measures one GET /primary and one GET /replica through the whole router
// (middleware, rule evaluation, the JSON document), without the network.
func BenchmarkHealthGET(b *testing.B) {
	for _, tc := range []struct{ name, path string }{{"primary", "/primary"}, {"replica", "/replica?lag=16MB"}, {"options", "/primary"}} {
		b.Run(tc.name, func(b *testing.B) {
			node := newNode(primary())
			r := NewRouter(routesOf(node), nil, nil, nil)
			method := http.MethodGet
			if tc.name == "options" {
				method = http.MethodOptions
			}
			req := httptest.NewRequest(method, tc.path, nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				r.ServeHTTP(rec, req)
				if rec.Code == 0 {
					b.Fatal("no answer")
				}
			}
		})
	}
}
