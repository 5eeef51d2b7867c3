// Command soak runs Parley the way production does for a while and checks
// that no message is lost or answered twice: several replicas on a
// three-node Redis Cluster, web turns and Telegram updates with the
// platforms' retries, one replica killed and restarted and one Redis
// primary restarted along the way. It prints a report per phase (turns,
// lost, duplicated, latency) and exits 1 if anything was lost or
// duplicated. scripts/soak.sh builds Parley and runs it; it is not part of
// the test command.
//
// Every conversation's handler counts its turns in the session and answers
// "n=<count>". A web conversation sends message k (with a message id, so a
// retry is recognized) until some replica answers, and expects "n=k": less
// means an earlier turn was lost, more that one ran twice; a retry of an
// answered message must get the same answer. A Telegram chat sends update k
// and waits for the fake Bot API to receive "n=k"; at the end, every reply
// must have arrived exactly once, and the bot's dead letters must be empty.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	adminKey    = "soak-admin-key-0123456789"
	webToken    = "soak-web-token-0123"
	tgSecret    = "soak-telegram-secret"
	tgBotToken  = "123456:SOAK"
	botName     = "soak"
	handlerLua  = `function handle(event, session) session.n = (session.n or 0) + 1 return "n=" .. session.n end`
	retryChance = 0.05 // a platform sends an answered message again
)

func main() {
	var (
		parley   = flag.String("parley", "", "the parley binary")
		redisBin = flag.String("redis-server", "redis-server", "the redis-server binary")
		duration = flag.Duration("duration", 10*time.Minute, "how long to run")
		replicas = flag.Int("replicas", 3, "Parley replicas")
		webConvs = flag.Int("web", 60, "web conversations running at once")
		tgChats  = flag.Int("telegram", 60, "Telegram chats running at once")
		think    = flag.Duration("think", 200*time.Millisecond, "pause between a conversation's messages")
		keep     = flag.Bool("keep", false, "keep the work directory (logs) after the run")
	)
	flag.Parse()
	if *parley == "" {
		log.Fatal("soak: -parley is required")
	}
	work, err := os.MkdirTemp("", "parley-soak-")
	if err != nil {
		log.Fatal(err)
	}
	bad := false
	defer func() {
		if *keep || bad {
			log.Printf("soak: logs kept in %s", work)
			return
		}
		os.RemoveAll(work)
	}()
	r := &run{work: work, parley: *parley, redisBin: *redisBin, start: time.Now(), duration: *duration,
		results: map[string]*stats{}, phases: []phase{{"steady", time.Now()}}}
	defer r.stopAll()
	if err := r.startCluster(); err != nil {
		log.Fatalf("soak: redis cluster: %v", err)
	}
	r.startTelegramAPI()
	for i := range *replicas {
		if err := r.startReplica(i); err != nil {
			log.Fatalf("soak: replica %d: %v", i, err)
		}
	}
	if err := r.setup(); err != nil {
		log.Fatalf("soak: set-up: %v", err)
	}
	log.Printf("soak: %d replicas on a 3-node Redis Cluster, %d web conversations, %d Telegram chats, %s; logs in %s",
		*replicas, *webConvs, *tgChats, *duration, work)

	ctx, cancel := context.WithDeadline(context.Background(), r.start.Add(*duration))
	defer cancel()
	go r.chaos(ctx)
	var wg sync.WaitGroup
	for i := range *webConvs {
		wg.Go(func() { r.webConversation(ctx, i, *think) })
	}
	for i := range *tgChats {
		wg.Go(func() { r.telegramChat(ctx, int64(1000+i), *think) })
	}
	wg.Wait()
	r.settle(30 * time.Second)
	r.deadLetters()
	if bad = r.report(os.Stdout); bad {
		r.stopAll()
		log.Printf("soak: logs kept in %s", work)
		os.Exit(1)
	}
}

// run is one soak run's processes and results.
type run struct {
	work, parley, redisBin string
	start                  time.Time
	duration               time.Duration

	mu        sync.Mutex
	nodes     []*proc // Redis Cluster nodes
	replicas  []*proc // Parley replicas
	phases    []phase
	results   map[string]*stats // by phase name
	tgAPI     *http.Server
	tgAddr    string
	tgReplies map[int64][]string // chat -> texts received by the fake Bot API
	updateID  atomic.Int64
	missed    []miss // Telegram replies not received in time, checked again at the end
	// deadLettered is how many events the bot's dead letters hold at the end.
	deadLettered int
}

// miss is a Telegram reply that had not arrived when its chat gave up.
type miss struct {
	chat  int64
	text  string
	phase string
}

// proc is a process the run started, with how to start it again.
type proc struct {
	name string
	port int
	args []string
	env  []string
	cmd  *exec.Cmd
}

// phase is a period of the run named after what happened in it.
type phase struct {
	name string
	at   time.Time
}

// stats are the turns that started in one phase.
type stats struct {
	web, telegram, lost, late, duplicated, retries int
	latencies                                      []time.Duration
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (r *run) launch(p *proc) error {
	logf, err := os.OpenFile(filepath.Join(r.work, p.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	p.cmd = exec.Command(p.args[0], p.args[1:]...)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return err
	}
	go func() { _ = p.cmd.Wait(); logf.Close() }()
	return nil
}

func (r *run) stop(p *proc, sig syscall.Signal) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	for range 100 {
		if p.cmd.ProcessState != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = p.cmd.Process.Kill()
	time.Sleep(100 * time.Millisecond)
}

func (r *run) stopAll() {
	r.mu.Lock()
	procs := append(slices.Clone(r.replicas), r.nodes...)
	r.mu.Unlock()
	for _, p := range procs {
		r.stop(p, syscall.SIGTERM)
	}
	if r.tgAPI != nil {
		_ = r.tgAPI.Close()
	}
}

func redisCLI(port int, args ...string) (string, error) {
	out, err := exec.Command("redis-cli", append([]string{"-p", strconv.Itoa(port)}, args...)...).CombinedOutput()
	return string(out), err
}

// startCluster starts three Redis Cluster primaries with append-only
// persistence and splits the slots between them.
func (r *run) startCluster() error {
	for i := range 3 {
		port := freePort()
		dir := filepath.Join(r.work, fmt.Sprintf("redis-%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		p := &proc{name: fmt.Sprintf("redis-%d", i), port: port, args: []string{r.redisBin, "--port", strconv.Itoa(port),
			"--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "5000", "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--dir", dir}}
		if err := r.launch(p); err != nil {
			return err
		}
		r.nodes = append(r.nodes, p)
	}
	for _, n := range r.nodes {
		if err := waitFor(10*time.Second, func() bool { out, err := redisCLI(n.port, "ping"); return err == nil && strings.Contains(out, "PONG") }); err != nil {
			return fmt.Errorf("node %s did not start", n.name)
		}
	}
	ranges := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	for i, n := range r.nodes {
		if _, err := redisCLI(n.port, "cluster", "addslotsrange", strconv.Itoa(ranges[i][0]), strconv.Itoa(ranges[i][1])); err != nil {
			return err
		}
		if i > 0 {
			if _, err := redisCLI(r.nodes[0].port, "cluster", "meet", "127.0.0.1", strconv.Itoa(n.port)); err != nil {
				return err
			}
		}
	}
	return waitFor(30*time.Second, func() bool {
		for _, n := range r.nodes {
			out, _ := redisCLI(n.port, "cluster", "info")
			if !strings.Contains(out, "cluster_state:ok") || !strings.Contains(out, "cluster_known_nodes:3") {
				return false
			}
		}
		return true
	})
}

func waitFor(d time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// startTelegramAPI serves a fake Bot API that records every sendMessage.
func (r *run) startTelegramAPI() {
	r.tgReplies = map[int64][]string{}
	port := freePort()
	r.tgAddr = fmt.Sprintf("http://127.0.0.1:%d", port)
	mux := http.NewServeMux()
	var msgID atomic.Int64
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			ChatID json.RawMessage `json:"chat_id"`
			Text   string          `json:"text"`
		}
		raw, _ := io.ReadAll(req.Body)
		if strings.HasSuffix(req.URL.Path, "/sendMessage") && json.Unmarshal(raw, &body) == nil {
			chat, _ := strconv.ParseInt(strings.Trim(string(body.ChatID), `"`), 10, 64)
			r.mu.Lock()
			dup := slices.Contains(r.tgReplies[chat], body.Text)
			r.tgReplies[chat] = append(r.tgReplies[chat], body.Text)
			r.mu.Unlock()
			if dup {
				// Counted in the phase in which the second copy arrived.
				r.record(time.Now(), func(s *stats) { s.duplicated++ })
				log.Printf("soak: chat %d received %q again", chat, body.Text)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"result":{"message_id":%d,"date":%d,"chat":{"id":1,"type":"private"}}}`, msgID.Add(1), time.Now().Unix())
	})
	r.tgAPI = &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.tgAPI.ListenAndServe() }()
}

func (r *run) redisURL() string {
	// The first address carries the options; the others are seed nodes too.
	url := fmt.Sprintf("redis://127.0.0.1:%d/0?cluster=true", r.nodes[0].port)
	for _, n := range r.nodes[1:] {
		url += fmt.Sprintf(",127.0.0.1:%d", n.port)
	}
	return url
}

func (r *run) startReplica(i int) error {
	port := freePort()
	p := &proc{name: fmt.Sprintf("parley-%d", i), port: port, args: []string{r.parley, "serve"}, env: []string{
		"REDIS_URL=" + r.redisURL(), "PARLEY_ADMIN_KEY=" + adminKey, fmt.Sprintf("PARLEY_ADDR=127.0.0.1:%d", port),
		"PARLEY_DATA_DIR=" + filepath.Join(r.work, fmt.Sprintf("parley-%d-data", i)), "PARLEY_LOG_FORMAT=json",
		"PARLEY_QUEUE_LEASE=5s", "PARLEY_SHUTDOWN_TIMEOUT=10s",
		"PARLEY_SECRET_KEY=c29hay1zZWNyZXQta2V5LTAxMjM0NTY3ODlhYmNkZWY=",
	}}
	if err := r.launch(p); err != nil {
		return err
	}
	r.mu.Lock()
	if i < len(r.replicas) {
		r.replicas[i] = p
	} else {
		r.replicas = append(r.replicas, p)
	}
	r.mu.Unlock()
	return waitFor(60*time.Second, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

var client = &http.Client{Timeout: 20 * time.Second}

func (r *run) call(method, url string, header map[string]string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

func (r *run) setup() error {
	base := fmt.Sprintf("http://127.0.0.1:%d/v1/bots/%s", r.replicas[0].port, botName)
	admin := map[string]string{"Authorization": "Bearer " + adminKey, "Content-Type": "application/json"}
	for _, step := range []struct{ method, url, body string }{
		{"PUT", base, `{}`},
		{"PUT", base + "/intents/fallback", handlerLua},
		{"PUT", base + "/channels/web", fmt.Sprintf(`{"token": %q}`, webToken)},
		{"PUT", base + "/channels/telegram", fmt.Sprintf(`{"secret_token": %q, "bot_token": %q, "api_base_url": %q}`, tgSecret, tgBotToken, r.tgAddr)},
	} {
		status, body, err := r.call(step.method, step.url, admin, []byte(step.body))
		if err != nil || status >= 300 {
			return fmt.Errorf("%s %s: %d %s: %w", step.method, step.url, status, body, err)
		}
	}
	// Every replica serves the bot before traffic starts.
	time.Sleep(3 * time.Second)
	return nil
}

// chaos kills a replica and restarts it, then restarts a Redis primary,
// naming the phases after what happened.
func (r *run) chaos(ctx context.Context) {
	at := func(frac float64) bool {
		t := time.NewTimer(time.Until(r.start.Add(time.Duration(frac * float64(r.duration)))))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	mark := func(name string) {
		r.mu.Lock()
		r.phases = append(r.phases, phase{name, time.Now()})
		r.mu.Unlock()
		log.Printf("soak: %s", name)
	}
	if !at(0.2) {
		return
	}
	victim := r.replicas[len(r.replicas)-1]
	mark("replica killed (SIGKILL) and restarted")
	r.stop(victim, syscall.SIGKILL)
	if !at(0.3) {
		return
	}
	if err := r.startReplica(len(r.replicas) - 1); err != nil {
		log.Printf("soak: restarting the replica: %v", err)
	}
	if !at(0.45) {
		return
	}
	mark("steady again")
	if !at(0.55) {
		return
	}
	node := r.nodes[1]
	mark("Redis primary restarted")
	r.stop(node, syscall.SIGTERM)
	time.Sleep(3 * time.Second)
	if err := r.launch(node); err != nil {
		log.Printf("soak: restarting the Redis node: %v", err)
	}
	if !at(0.7) {
		return
	}
	mark("steady to the end")
}

func (r *run) phaseAt(t time.Time) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.phaseAtLocked(t)
}

func (r *run) phaseAtLocked(t time.Time) string {
	name := r.phases[0].name
	for _, p := range r.phases {
		if !t.Before(p.at) {
			name = p.name
		}
	}
	return name
}

func (r *run) record(start time.Time, f func(s *stats)) {
	name := r.phaseAt(start)
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.results[name]
	if s == nil {
		s = &stats{}
		r.results[name] = s
	}
	f(s)
}

func (r *run) replicaURL(path string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("http://127.0.0.1:%d%s", r.replicas[rand.IntN(len(r.replicas))].port, path)
}

// deliver sends body to a random replica until one accepts it (2xx), as a
// platform retries, for up to two minutes; it returns the answer and how
// many tries failed.
func (r *run) deliver(path string, header map[string]string, body []byte) ([]byte, int, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for tries := 0; ; tries++ {
		status, out, err := r.call("POST", r.replicaURL(path), header, body)
		if err == nil && status/100 == 2 {
			return out, tries, nil
		}
		if time.Now().After(deadline) {
			return nil, tries, fmt.Errorf("no replica accepted it: %d %s: %w", status, out, err)
		}
		time.Sleep(time.Duration(200+rand.IntN(300)) * time.Millisecond)
	}
}

func (r *run) webConversation(ctx context.Context, i int, think time.Duration) {
	conv := fmt.Sprintf("web-%d", i)
	header := map[string]string{"Authorization": "Bearer " + webToken, "Content-Type": "application/json"}
	for k := 1; ctx.Err() == nil; k++ {
		body, _ := json.Marshal(map[string]string{"id": fmt.Sprintf("%s-%d", conv, k), "user": conv, "conversation": conv, "text": "hello"})
		start := time.Now()
		out, tries, err := r.deliver("/hooks/"+botName+"/web", header, body)
		took := time.Since(start)
		want := fmt.Sprintf("n=%d", k)
		got := webReply(out)
		if err == nil && rand.Float64() < retryChance {
			// The platform sends the answered message again: same answer, nothing run.
			if again, _, err2 := r.deliver("/hooks/"+botName+"/web", header, body); err2 == nil && webReply(again) != got {
				r.record(start, func(s *stats) { s.duplicated++ })
				log.Printf("soak: %s message %d retried: %q then %q", conv, k, got, webReply(again))
			}
		}
		r.record(start, func(s *stats) {
			s.web++
			s.retries += tries
			s.latencies = append(s.latencies, took)
			switch {
			case err != nil:
				s.lost++
				log.Printf("soak: %s message %d: %v", conv, k, err)
			case got != want:
				if n, _ := strconv.Atoi(strings.TrimPrefix(got, "n=")); n > k {
					s.duplicated++
				} else {
					s.lost++
				}
				log.Printf("soak: %s message %d answered %q, want %q", conv, k, got, want)
			}
		})
		if err != nil || got != want {
			return // the conversation's count is off from here on
		}
		time.Sleep(think)
	}
}

func webReply(out []byte) string {
	var ans struct {
		Replies []struct {
			Text string `json:"text"`
		} `json:"replies"`
	}
	if json.Unmarshal(out, &ans) != nil || len(ans.Replies) == 0 {
		return ""
	}
	return ans.Replies[0].Text
}

func (r *run) telegramChat(ctx context.Context, chat int64, think time.Duration) {
	header := map[string]string{"X-Telegram-Bot-Api-Secret-Token": tgSecret, "Content-Type": "application/json"}
	for k := 1; ctx.Err() == nil; k++ {
		update := r.updateID.Add(1)
		body, _ := json.Marshal(map[string]any{"update_id": update, "message": map[string]any{
			"message_id": k, "date": time.Now().Unix(), "text": "hello",
			"chat": map[string]any{"id": chat, "type": "private"}, "from": map[string]any{"id": chat, "is_bot": false, "first_name": "Soak"}}})
		start := time.Now()
		_, tries, err := r.deliver("/hooks/"+botName+"/telegram", header, body)
		if err == nil && rand.Float64() < retryChance {
			_, _, _ = r.deliver("/hooks/"+botName+"/telegram", header, body) // the platform's retry
		}
		want := fmt.Sprintf("n=%d", k)
		seen := err == nil && waitFor(90*time.Second, func() bool { return r.received(chat, want) }) == nil
		took := time.Since(start)
		r.record(start, func(s *stats) {
			s.telegram++
			s.retries += tries
			s.latencies = append(s.latencies, took)
			if !seen {
				s.lost++
				r.missed = append(r.missed, miss{chat, want, r.phaseAtLocked(start)})
				got := r.tgReplies[chat]
				log.Printf("soak: chat %d update %d: no %q within 90s (%v); its last replies: %q", chat, update, want, err, got[max(0, len(got)-3):])
			}
		})
		if !seen {
			return
		}
		time.Sleep(think)
	}
}

func (r *run) received(chat int64, text string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.tgReplies[chat], text)
}

// settle waits for late replies and counts the replies that came after
// their chat gave up as late rather than lost.
func (r *run) settle(d time.Duration) {
	time.Sleep(d)
	r.mu.Lock()
	defer r.mu.Unlock()
	// A reply that came after its chat gave up was late, not lost.
	for _, m := range r.missed {
		if slices.Contains(r.tgReplies[m.chat], m.text) {
			r.results[m.phase].lost--
			r.results[m.phase].late++
			log.Printf("soak: chat %d: %q arrived after all (late, not lost)", m.chat, m.text)
		}
	}
}

// deadLetters asks a replica for the bot's dead letters: an event there was
// given up on, which the run counts as lost.
func (r *run) deadLetters() {
	url := r.replicaURL("/v1/bots/" + botName + "/deadletters?limit=1000")
	status, out, err := r.call("GET", url, map[string]string{"Authorization": "Bearer " + adminKey}, nil)
	if err != nil || status != http.StatusOK {
		log.Printf("soak: reading the dead letters: %d %s %v", status, out, err)
		return
	}
	var body struct {
		DeadLetters []struct {
			Stage string `json:"stage"`
			Error string `json:"error"`
			Event struct {
				ID string `json:"id"`
			} `json:"event"`
		} `json:"deadletters"`
	}
	if err := json.Unmarshal(out, &body); err != nil {
		log.Printf("soak: reading the dead letters: %v", err)
		return
	}
	r.mu.Lock()
	r.deadLettered = len(body.DeadLetters)
	r.mu.Unlock()
	for _, d := range body.DeadLetters {
		log.Printf("soak: dead letter: event %s, stage %s: %s", d.Event.ID, d.Stage, d.Error)
	}
}

// report prints the table and says whether anything was lost or duplicated.
func (r *run) report(w io.Writer) (bad bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(w, "\nsoak: %d replicas, 3-node Redis Cluster, %s (target: 0 lost, 0 duplicated)\n\n", len(r.replicas), r.duration)
	fmt.Fprintln(w, "| phase | web turns | telegram turns | retried deliveries | lost | late (>90s) | duplicated | p50 | p99 |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	var total stats
	seen := map[string]bool{}
	for _, p := range r.phases {
		if seen[p.name] {
			continue
		}
		seen[p.name] = true
		s := r.results[p.name]
		if s == nil {
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d | %s | %s |\n", p.name, s.web, s.telegram, s.retries, s.lost, s.late, s.duplicated,
			quantile(s.latencies, 0.5), quantile(s.latencies, 0.99))
		total.web += s.web
		total.telegram += s.telegram
		total.retries += s.retries
		total.lost += s.lost
		total.late += s.late
		total.duplicated += s.duplicated
		total.latencies = append(total.latencies, s.latencies...)
	}
	fmt.Fprintf(w, "| all | %d | %d | %d | %d | %d | %d | %s | %s |\n", total.web, total.telegram, total.retries, total.lost, total.late, total.duplicated,
		quantile(total.latencies, 0.5), quantile(total.latencies, 0.99))
	fmt.Fprintf(w, "\nDead letters at the end: %d.\n", r.deadLettered)
	fmt.Fprintln(w, "Telegram latency is from the webhook to the fake Bot API receiving the reply. A duplicated")
	fmt.Fprintln(w, "Telegram reply is counted in the phase in which its second copy arrived.")
	return total.lost > 0 || total.duplicated > 0 || r.deadLettered > 0
}

func quantile(d []time.Duration, q float64) string {
	if len(d) == 0 {
		return "-"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))].Round(time.Millisecond).String()
}
