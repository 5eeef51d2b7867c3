package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestDashboardQueriesParse checks every PromQL query of the Grafana
// dashboard with the real promtool (Debian's prometheus package, which the
// test command installs): the queries, with the dashboard's variables
// filled in, become recording rules, and `promtool check rules` parses
// them, so a query that Grafana would refuse fails the test suite instead
// of leaving a panel empty.
func TestDashboardQueriesParse(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("PARLEY_TEST_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool not found: install Debian's prometheus package")
		}
		t.Skip("promtool not installed (Debian's prometheus package); the test command installs it")
	}
	raw, err := os.ReadFile("grafana/dashboards/parley.json")
	if err != nil {
		t.Fatal(err)
	}
	var dashboard any
	if err := json.Unmarshal(raw, &dashboard); err != nil {
		t.Fatalf("parley.json: %v", err)
	}
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if e, ok := v["expr"].(string); ok {
				exprs = append(exprs, e)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(dashboard)
	if len(exprs) < 20 {
		t.Fatalf("found only %d queries in the dashboard", len(exprs))
	}
	fill := strings.NewReplacer(`"$bot"`, `".*"`, `"$channel"`, `".*"`, `"$instance"`, `".*"`, "$__rate_interval", "5m")
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	for _, e := range exprs {
		e = fill.Replace(e)
		if strings.Contains(e, "$") {
			t.Errorf("a dashboard variable this test does not fill in: %s", e)
		}
		rules = append(rules, rule{Record: "dashboard:query", Expr: e})
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if res, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the dashboard's queries: %v\n%s", err, res)
	}
}
