package daemon_test

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/erpctl/erpctl/controlplane/cptest"
	"github.com/erpctl/erpctl/controlplane/daemon"
)

// Connections that send nothing, and a body sent a byte at a time, are cut off by the server's
// timeouts; with every connection slot held by idle clients, a good request is still served once
// they are cut, and nothing is written to either tenant.
func TestServerCutsIdleAndSlowClients(t *testing.T) {
	t.Parallel()
	e := cptest.New(t)
	e.Create("acme")
	e.Create("globex")
	d := startDaemonWith(t, e, daemon.Config{Loop: daemon.LoopConfig{Interval: time.Hour},
		Server: daemon.ServerConfig{MaxConns: 8, ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: time.Second}})
	var idle []net.Conn
	for range 8 {
		c, err := net.Dial("tcp", d.addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	start := time.Now()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + d.addr + "/healthz")
	if err != nil {
		t.Fatalf("a good request behind 8 idle connections: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz: %s", resp.Status)
	}
	t.Logf("served after %s", time.Since(start).Round(time.Millisecond))
	// The idle connections were closed by the server.
	for i, c := range idle {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("idle connection %d: %v, want EOF", i, err)
		}
	}

	c, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head := "POST /api/acme/product/categories/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer x\r\n" +
		"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
	if _, err := c.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	cut := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		buf := make([]byte, 512)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, err := c.Read(buf); err != nil {
				cut <- time.Since(start)
				return
			}
		}
	}()
	for i := 0; i < 100; i++ {
		select {
		case after := <-cut:
			if after > 5*time.Second {
				t.Fatalf("a slow body was cut only after %s", after)
			}
			if n := e.Count(`SELECT count(*) FROM tenant_acme.categories`) + e.Count(`SELECT count(*) FROM tenant_globex.categories`); n != 0 {
				t.Fatalf("%d rows written", n)
			}
			return
		case <-time.After(100 * time.Millisecond):
			if _, err := c.Write([]byte(" ")); err != nil {
				continue // the server closed its side; the reader reports it
			}
		}
	}
	t.Fatal("a body sent a byte every 100 ms was never cut off")
}
