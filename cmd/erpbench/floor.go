package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpctl/erpctl/internal/ident"
)

// floorProduct is a product row as the floor server answers it: the columns of the data API's
// GET one, in the same JSON shape.
type floorProduct struct {
	ID          int64     `json:"id"`
	SKU         string    `json:"sku"`
	Name        string    `json:"name"`
	Description *string   `json:"description"`
	Price       string    `json:"price"`
	CategoryID  *int64    `json:"category_id"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	CreatedBy   *string   `json:"created_by"`
	UpdatedBy   *string   `json:"updated_by"`
}

// serveFloor runs the most a Go API can do here for GET one, as the floor erpctl's GET one is
// measured against: one route, one prepared primary-key select on a pgxpool of the control
// plane's size and statement cache, encoding/json; no auth, logging, tenant lookup or framework.
// Its URL is base + "/floor/{id}/".
func (b *bench) serveFloor(ctx context.Context, slug string) (base string, stop func(), err error) {
	cfg, err := pgxpool.ParseConfig(b.url)
	if err != nil {
		return "", nil, err
	}
	cfg.MaxConns = b.p.Pool().Config().MaxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return "", nil, err
	}
	q := `SELECT id, sku, name, description, price::text, category_id, created_at, updated_at, created_by, updated_by
		FROM ` + ident.Quote(ident.SchemaName(slug), "products") + ` WHERE id = $1`
	mux := http.NewServeMux()
	mux.HandleFunc("GET /floor/{id}/", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
		var p floorProduct
		err = pool.QueryRow(r.Context(), q, id).Scan(&p.ID, &p.SKU, &p.Name, &p.Description, &p.Price, &p.CategoryID,
			&p.CreatedAt, &p.UpdatedAt, &p.CreatedBy, &p.UpdatedBy)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			http.NotFound(w, r)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&p)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pool.Close()
		return "", nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close(); pool.Close() }, nil
}
