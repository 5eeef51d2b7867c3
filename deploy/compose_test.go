package deploy

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"
)

// loadCompose loads compose.yaml the way `docker compose` does (the Compose
// Specification's schema, interpolation, normalization), with env as the
// environment.
func loadCompose(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	var pairs []string
	for k, v := range env {
		pairs = append(pairs, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithWorkingDirectory("."), cli.WithEnv(pairs), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return opts.LoadProject(ctx)
}

var composeKeys = map[string]string{
	"PARLEY_ADMIN_KEY":  "0123456789abcdef0123456789abcdef",
	"PARLEY_SECRET_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
}

// TestComposeFile checks deploy/compose.yaml against the Compose
// Specification (a misspelt or misplaced key fails) and checks what the
// README promises: three replicas behind the load balancer, Redis with
// persistence, Prometheus scraping every replica, Grafana with the
// dashboard, and files that exist behind every bind mount.
func TestComposeFile(t *testing.T) {
	p, err := loadCompose(t, composeKeys)
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	svc := func(name string) types.ServiceConfig {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatalf("compose.yaml: %v", err)
		}
		return s
	}

	parley := svc("parley")
	if parley.Deploy == nil || parley.Deploy.Replicas == nil || *parley.Deploy.Replicas != 3 {
		t.Errorf("parley: want 3 replicas, got %+v", parley.Deploy)
	}
	env := func(k string) string {
		v := parley.Environment[k]
		if v == nil || *v == "" {
			t.Fatalf("parley: %s is not set", k)
		}
		return *v
	}
	if got := env("PARLEY_ADMIN_KEY"); got != composeKeys["PARLEY_ADMIN_KEY"] {
		t.Errorf("PARLEY_ADMIN_KEY is %q, not taken from the environment", got)
	}
	if !strings.HasPrefix(env("REDIS_URL"), "redis://redis:6379/") {
		t.Errorf("parley: REDIS_URL %q is not the redis service", env("REDIS_URL"))
	}
	// The same order as the Kubernetes base: heap guard < GOMEMLIMIT <
	// the container's memory, and the drain within the stop grace period.
	heap, gomem := parseSize(t, strings.TrimSuffix(env("PARLEY_SANDBOX_HEAP_LIMIT"), "B")), parseSize(t, strings.TrimSuffix(env("GOMEMLIMIT"), "B"))
	if parley.Deploy.Resources.Limits == nil {
		t.Fatal("parley: no memory limit")
	}
	limit := int64(parley.Deploy.Resources.Limits.MemoryBytes)
	if heap >= gomem || gomem >= limit {
		t.Errorf("memory: heap limit %d, GOMEMLIMIT %d, container limit %d: want them rising", heap, gomem, limit)
	}
	drain, err := time.ParseDuration(env("PARLEY_SHUTDOWN_TIMEOUT"))
	if err != nil {
		t.Fatal(err)
	}
	if parley.StopGracePeriod == nil || time.Duration(*parley.StopGracePeriod) <= drain {
		t.Errorf("stop_grace_period %v is not above PARLEY_SHUTDOWN_TIMEOUT %v", parley.StopGracePeriod, drain)
	}
	if _, ok := parley.DependsOn["redis"]; !ok {
		t.Error("parley does not wait for redis")
	}
	if len(parley.Ports) != 0 {
		t.Error("parley publishes ports: with three replicas only the load balancer may")
	}

	lb := svc("lb")
	if len(lb.Ports) != 1 || lb.Ports[0].Published != "8080" {
		t.Errorf("lb: want port 8080 published, got %+v", lb.Ports)
	}
	redis := svc("redis")
	if !slices.Contains(redis.Command, "--appendonly") || !hasVolume(redis, "/data", types.VolumeTypeVolume) {
		t.Errorf("redis: want append-only persistence on a named volume, got %v %+v", redis.Command, redis.Volumes)
	}
	if redis.HealthCheck == nil {
		t.Error("redis: no health check, which parley's depends_on waits for")
	}
	prom := svc("prometheus")
	if !hasVolume(prom, "/etc/prometheus/alerts.yml", types.VolumeTypeBind) || !hasVolume(prom, "/prometheus", types.VolumeTypeVolume) {
		t.Errorf("prometheus: want the alert rules and a data volume, got %+v", prom.Volumes)
	}
	grafana := svc("grafana")
	if !hasVolume(grafana, "/etc/grafana/provisioning", types.VolumeTypeBind) {
		t.Errorf("grafana: the provisioning is not mounted: %+v", grafana.Volumes)
	}

	// Every bind mount names a file or folder of this repository.
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: bind mount %s: %v", s.Name, v.Source, err)
			}
		}
	}
	checkPrometheusScrapesEveryReplica(t)
	checkGrafanaFindsTheDashboard(t, grafana)
}

// TestComposeNeedsTheKeys checks that compose.yaml refuses to start
// without the admin and secret keys instead of starting Parley without them.
func TestComposeNeedsTheKeys(t *testing.T) {
	for key := range composeKeys {
		env := map[string]string{}
		for k, v := range composeKeys {
			if k != key {
				env[k] = v
			}
		}
		if _, err := loadCompose(t, env); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("without %s: want an error naming it, got %v", key, err)
		}
	}
}

func hasVolume(s types.ServiceConfig, target, typ string) bool {
	return slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Target == target && v.Type == typ
	})
}

// checkPrometheusScrapesEveryReplica checks that Prometheus discovers the
// replicas by DNS (one address each) rather than scraping the service's
// one name, which would sample a different replica every time.
func checkPrometheusScrapesEveryReplica(t *testing.T) {
	raw, err := os.ReadFile("compose/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName      string `json:"job_name"`
			DNSSDConfigs []struct {
				Names []string `json:"names"`
				Type  string   `json:"type"`
				Port  int      `json:"port"`
			} `json:"dns_sd_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, sc := range cfg.ScrapeConfigs {
		for _, d := range sc.DNSSDConfigs {
			if slices.Contains(d.Names, "parley") && d.Type == "A" && d.Port == 8080 {
				return
			}
		}
	}
	t.Errorf("compose/prometheus.yml: no job discovers every parley replica by DNS: %+v", cfg.ScrapeConfigs)
}

// checkGrafanaFindsTheDashboard follows the provisioning: the dashboards'
// provider reads a folder that is mounted from grafana/dashboards, which
// holds parley.json, and the data source is the prometheus service.
func checkGrafanaFindsTheDashboard(t *testing.T, grafana types.ServiceConfig) {
	raw, err := os.ReadFile("grafana/provisioning/dashboards/parley.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	if err := yaml.Unmarshal(raw, &prov); err != nil || len(prov.Providers) == 0 {
		t.Fatalf("dashboard provisioning: %v", err)
	}
	var source string
	for _, v := range grafana.Volumes {
		if v.Target == prov.Providers[0].Options.Path {
			source = v.Source
		}
	}
	if source == "" {
		t.Fatalf("grafana: the dashboards' folder %s is not mounted", prov.Providers[0].Options.Path)
	}
	if _, err := os.Stat(filepath.Join(source, "parley.json")); err != nil {
		t.Errorf("grafana: the mounted dashboards' folder has no parley.json: %v", err)
	}
	ds, err := os.ReadFile("grafana/provisioning/datasources/prometheus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ds), "url: http://prometheus:9090") {
		t.Error("grafana: the data source is not the prometheus service")
	}
}

// TestLoadBalancerPassesWebSockets checks that nginx forwards the web
// channel's live connection (/hooks/{bot}/web/ws), a WebSocket: nginx
// drops the Upgrade and Connection headers unless told to pass them, and
// the upgrade then fails at every replica.
func TestLoadBalancerPassesWebSockets(t *testing.T) {
	raw, err := os.ReadFile("compose/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(raw)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`map\s+\$http_upgrade\s+\$connection_upgrade\s*\{`),
		regexp.MustCompile(`proxy_set_header\s+Upgrade\s+\$http_upgrade;`),
		regexp.MustCompile(`proxy_set_header\s+Connection\s+\$connection_upgrade;`),
		regexp.MustCompile(`proxy_http_version\s+1\.1;`),
	} {
		if !want.MatchString(conf) {
			t.Errorf("compose/nginx.conf: no %s", want)
		}
	}
	if regexp.MustCompile(`proxy_set_header\s+Connection\s+"";`).MatchString(conf) {
		t.Error(`compose/nginx.conf: Connection "" drops the upgrade`)
	}
}
