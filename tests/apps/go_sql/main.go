// A small Go application with a real database/sql pool (lib/pq driver) against PostgreSQL,
// exporting the pool through client_golang's collectors.NewDBStatsCollector, as poolwatch's
// `go_sql` preset reads it (go_sql_max_open_connections, go_sql_in_use_connections,
// go_sql_idle_connections, go_sql_wait_count_total, ...; label db_name).
//
// Built offline in GOPATH mode from Debian's packages by scripts/install-test-deps.sh (binary
// in the cache). Run by tests/common/real_apps.rs; prints `listening on PORT` once it serves.
//
//	GET  /metrics          the exposition
//	POST /hold?n=N         N goroutines each take a connection (db.Conn) and keep it until
//	                       /release; beyond the pool's size they wait (sql.DBStats counts
//	                       the wait); past --timeout they give up (database/sql does not
//	                       count that)
//	POST /release          every held connection goes back to the pool
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	_ "github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type app struct {
	db      *sql.DB
	timeout time.Duration
	mu      sync.Mutex
	release chan struct{}
}

func (a *app) hold(n int) {
	a.mu.Lock()
	release := a.release
	a.mu.Unlock()
	for i := 0; i < n; i++ {
		go a.holdOne(release)
	}
}

func (a *app) holdOne(release chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
	conn, err := a.db.Conn(ctx)
	cancel()
	if err != nil {
		return
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "SELECT 1"); err != nil {
		log.Printf("SELECT 1: %v", err)
	}
	<-release
}

func (a *app) releaseAll() {
	a.mu.Lock()
	close(a.release)
	a.release = make(chan struct{})
	a.mu.Unlock()
}

func main() {
	dsn := flag.String("dsn", "", "PostgreSQL URL")
	port := flag.Int("port", 0, "HTTP port (0: any free one)")
	size := flag.Int("size", 5, "SetMaxOpenConns and SetMaxIdleConns")
	timeout := flag.Float64("timeout", 2.0, "acquire timeout, seconds")
	name := flag.String("name", "checkout", "the db_name label")
	flag.Parse()

	db, err := sql.Open("postgres", *dsn)
	if err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(*size)
	db.SetMaxIdleConns(*size)
	if err := db.Ping(); err != nil {
		log.Fatal(err)
	}
	a := &app{db: db, timeout: time.Duration(*timeout * float64(time.Second)), release: make(chan struct{})}

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewDBStatsCollector(db, *name))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if r.Method != http.MethodPost || err != nil || n < 0 {
			http.Error(w, "POST /hold?n=N", http.StatusBadRequest)
			return
		}
		a.hold(n)
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/release", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST /release", http.StatusBadRequest)
			return
		}
		a.releaseAll()
		fmt.Fprintln(w, "ok")
	})
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %d\n", listener.Addr().(*net.TCPAddr).Port)
	log.Fatal(http.Serve(listener, mux))
}
