package store

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// freePort returns a loopback port with nothing listening on it.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestOpenUnreachable(t *testing.T) {
	addr := freePort(t)
	start := time.Now()
	_, err := Open(context.Background(), Config{URL: "redis://parley:hunter2-secret@" + addr + "/0", ConnectTimeout: 2 * time.Second})
	if err == nil {
		t.Fatal("Open succeeded with nothing listening")
	}
	// Open gives up rather than retrying: the bound is wide, for a busy
	// machine, and still far below go-redis's retries with backoff.
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Open took %s, ConnectTimeout is 2s", took)
	}
	msg := err.Error()
	for _, want := range []string{"redis at " + addr + " is unreachable", "connection refused"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error %q contains the password", msg)
	}
}

func TestOpenNoAnswer(t *testing.T) {
	// A server that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	_, err = Open(context.Background(), Config{URL: "redis://" + ln.Addr().String(), ConnectTimeout: 300 * time.Millisecond})
	took := time.Since(start)
	if err == nil {
		t.Fatal("Open succeeded against a silent server")
	}
	if took > 5*time.Second { // wide, for a busy machine
		t.Errorf("Open took %s, ConnectTimeout is 300ms", took)
	}
	if want := "redis at " + ln.Addr().String() + " is unreachable: no answer within 300ms"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestOpenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Open(ctx, Config{URL: "redis://" + freePort(t)})
	if err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("Open with a cancelled context: %v", err)
	}
}

func TestOpenBadURL(t *testing.T) {
	for _, raw := range []string{
		"http://user:s3cr3t@host:6379",
		"redis://:s3cr3t@host:notaport",
		"redis://user:s3cr3t@host:6379/notadb",
		"redis://user:s3cr3t@host:6379/0/extra",
		"redis://user:s3cr3t@host:6379/0?no_such_option=1",
		"redis://user:s3cr3t@host:6379?cluster=maybe",
		"redis://user:s3cr3t@host:6379/1?cluster=true",
		"redis://user:s3cr3t@a:7000,http://b:7001",
		"redis://user:s3cr3t@a:7000,redis://other:s3cr3t@b:7001",
		"redis://user:s3cr3t@a:7000,redis://b:7001/?read_only=true",
		"redis://user:s3cr3t@a:7000,,redis://b:7001",
		"redis://us er:s3c r3t@host",
		"redis://:s3cr3t@[::1",
		"redis://u:6379#s3cr3t@host",
		"redis://u:6379/s3cr3t@host",
		"redis://u:s3cr3t?x@host",
		"redis://",
		"localhost:6379",
		"::::",
	} {
		t.Run(raw, func(t *testing.T) {
			start := time.Now()
			s, err := Open(context.Background(), Config{URL: raw, ConnectTimeout: 5 * time.Second})
			if err == nil {
				s.Close()
				t.Fatal("Open accepted a bad URL")
			}
			if time.Since(start) > time.Second {
				t.Errorf("rejecting took %s; a bad URL should fail before connecting", time.Since(start))
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q contains the password", err)
			}
			t.Log(err)
		})
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		raw      string
		cluster  bool
		where    string
		describe string
		db       int
		tls      bool
		password string
		name     string
	}{
		{raw: "redis://10.0.0.5", where: "10.0.0.5:6379", describe: "redis redis://10.0.0.5:6379/0"},
		{raw: " redis://bob:pa%40ss@10.0.0.5:6380/2 ", where: "10.0.0.5:6380", db: 2, password: "pa@ss",
			describe: "redis redis://bob:xxxxx@10.0.0.5:6380/2"},
		{raw: "rediss://:pw@cache.example.com?client_name=worker", where: "cache.example.com:6379", tls: true,
			password: "pw", name: "worker", describe: "redis rediss://:xxxxx@cache.example.com:6379/0"},
		{raw: "redis://h:1/0?cluster=false", where: "h:1", describe: "redis redis://h:1/0"},
		{raw: "redis://[::1]:7000", where: "[::1]:7000", describe: "redis redis://[::1]:7000/0"},
		{raw: "redis://a:7000?cluster=true", cluster: true, where: "a:7000", describe: "redis cluster redis://a:7000"},
		{raw: "redis://:pw@a:7000/0,redis://b:7001, c", cluster: true, where: "a:7000,b:7001,c:6379", password: "pw",
			describe: "redis cluster redis://:xxxxx@a:7000,b:7001,c:6379"},
		{raw: "redis://:abc,def@h:1", where: "h:1", password: "abc,def", describe: "redis redis://:xxxxx@h:1/0"},
		{raw: "rediss://u:pw@a:7000,rediss://b:7001?read_only=true"}, // options on a later address: error
		{raw: "redis://u:12#34@h"}, // unencoded '#': error
		{raw: "redis://u:12/34@h"}, // unencoded '/': error
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := parseTarget(tc.raw)
			if tc.where == "" {
				if err == nil {
					t.Fatalf("parsed %q, want an error", tc.raw)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.where != tc.where || got.describe != tc.describe || (got.cluster != nil) != tc.cluster {
				t.Errorf("where %q describe %q cluster %v; want %q %q %v",
					got.where, got.describe, got.cluster != nil, tc.where, tc.describe, tc.cluster)
			}
			var password, name string
			var tls, timeouts bool
			var db int
			if got.cluster != nil {
				password, name, tls, timeouts = got.cluster.Password, got.cluster.ClientName, got.cluster.TLSConfig != nil, got.cluster.ContextTimeoutEnabled
			} else {
				password, name, tls, timeouts, db = got.simple.Password, got.simple.ClientName, got.simple.TLSConfig != nil,
					got.simple.ContextTimeoutEnabled, got.simple.DB
			}
			if tc.name == "" {
				tc.name = "parley"
			}
			if password != tc.password || name != tc.name || tls != tc.tls || db != tc.db || !timeouts {
				t.Errorf("password %q name %q tls %v db %d context timeouts %v; want %q %q %v %d true",
					password, name, tls, db, timeouts, tc.password, tc.name, tc.tls, tc.db)
			}
		})
	}
}

func TestRedisWrongPassword(t *testing.T) {
	url := testRedisURL(t)
	bad := strings.Replace(url, "redis://", "redis://parley:wr0ng-pa55@", 1)
	_, err := Open(context.Background(), Config{URL: bad})
	if err == nil {
		t.Fatal("Open succeeded with a wrong password")
	}
	if !strings.Contains(err.Error(), "refused the connection") || strings.Contains(err.Error(), "wr0ng-pa55") {
		t.Errorf("error %q should say the server refused, without the password", err)
	}
	t.Log(err)
}

func TestRedisDescribe(t *testing.T) {
	url := testRedisURL(t)
	s := openT(t, Config{URL: url})
	if s.Embedded() {
		t.Error("Embedded() = true for a real Redis")
	}
	want := "redis redis"
	if strings.Contains(url, "cluster=true") {
		want = "redis cluster redis"
	}
	if !strings.HasPrefix(s.Describe(), want) {
		t.Errorf("Describe() = %q", s.Describe())
	}
	startRun(t, s)
}
