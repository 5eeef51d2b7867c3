// Command loadgen drives the web channel of a running Parley with concurrent
// users and reports throughput and latency percentiles.
//
//	go run ./tools/loadgen -url http://127.0.0.1:8080 -bot loadbot -token T -c 32 -d 20s
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "Parley base URL")
	bot := flag.String("bot", "loadbot", "bot name")
	token := flag.String("token", "", "web channel token")
	conc := flag.Int("c", 32, "concurrent clients (each its own conversation)")
	dur := flag.Duration("d", 20*time.Second, "test duration")
	warm := flag.Duration("warmup", 2*time.Second, "warm-up, not measured")
	flag.Parse()

	transport := &http.Transport{MaxIdleConnsPerHost: *conc * 2}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  atomic.Int64
		measuring atomic.Bool
		stop      atomic.Bool
		wg        sync.WaitGroup
	)
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func(user string) {
			defer wg.Done()
			var mine []time.Duration
			for !stop.Load() {
				body, _ := json.Marshal(map[string]string{"user": user, "text": "hello"})
				req, _ := http.NewRequest("POST", *url+"/hooks/"+*bot+"/web", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+*token)
				start := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				elapsed := time.Since(start)
				if !measuring.Load() {
					continue
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					failures.Add(1)
					continue
				}
				mine = append(mine, elapsed)
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}(fmt.Sprintf("load-user-%d", i))
	}
	time.Sleep(*warm)
	measuring.Store(true)
	begin := time.Now()
	time.Sleep(*dur)
	measuring.Store(false)
	elapsed := time.Since(begin)
	stop.Store(true)
	wg.Wait()

	if len(latencies) == 0 {
		fmt.Fprintln(os.Stderr, "loadgen: no successful turns")
		os.Exit(1)
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) time.Duration { return latencies[int(float64(len(latencies)-1)*p)] }
	fmt.Printf("web channel load: %d clients, %s measured\n", *conc, elapsed.Round(time.Millisecond))
	fmt.Printf("turns: %d ok, %d failed\n", len(latencies), failures.Load())
	fmt.Printf("throughput: %.0f turns/s\n", float64(len(latencies))/elapsed.Seconds())
	fmt.Printf("latency: p50 %s  p90 %s  p99 %s  max %s\n", pct(0.50).Round(time.Microsecond),
		pct(0.90).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), latencies[len(latencies)-1].Round(time.Microsecond))
	if failures.Load() > 0 {
		os.Exit(1)
	}
}
