package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kinds are the objects the kustomizations may contain, each decoded
// strictly into its Kubernetes API type: a misspelt or misplaced field
// fails the test instead of being dropped by the API server.
var kinds = map[string]func() any{
	"v1/ConfigMap":                       func() any { return &corev1.ConfigMap{} },
	"v1/Service":                         func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                  func() any { return &corev1.ServiceAccount{} },
	"apps/v1/Deployment":                 func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                func() any { return &appsv1.StatefulSet{} },
	"batch/v1/Job":                       func() any { return &batchv1.Job{} },
	"networking.k8s.io/v1/Ingress":       func() any { return &networkingv1.Ingress{} },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return &networkingv1.NetworkPolicy{} },
	"policy/v1/PodDisruptionBudget":      func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any {
		return &autoscalingv2.HorizontalPodAutoscaler{}
	},
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &monitoringv1.ServiceMonitor{} },
}

// rendered is one kustomization's output, decoded.
type rendered struct {
	objects []any
	// pods are the labels of every pod template, by workload name.
	pods map[string]map[string]string
}

func render(t *testing.T, dir string) *rendered {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out := &rendered{pods: map[string]map[string]string{}}
	for _, r := range res.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(y, &head); err != nil {
			t.Fatal(err)
		}
		gvk := head.APIVersion + "/" + head.Kind
		mk, ok := kinds[gvk]
		if !ok {
			t.Errorf("%s: %s %s is not a kind this test knows; add it to kinds", dir, gvk, r.GetName())
			continue
		}
		obj := mk()
		j, err := yaml.YAMLToJSON(y)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.DisallowUnknownFields()
		if err := dec.Decode(obj); err != nil {
			t.Errorf("%s: %s %s does not decode strictly: %v", dir, gvk, r.GetName(), err)
			continue
		}
		out.objects = append(out.objects, obj)
		switch o := obj.(type) {
		case *appsv1.Deployment:
			out.pods[o.Name] = o.Spec.Template.Labels
		case *appsv1.StatefulSet:
			out.pods[o.Name] = o.Spec.Template.Labels
		case *batchv1.Job:
			out.pods[o.Name] = o.Spec.Template.Labels
		}
	}
	return out
}

func find[T any](r *rendered) []T {
	var out []T
	for _, o := range r.objects {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// selects reports whether some pod template carries all of sel.
func (r *rendered) selects(sel map[string]string) bool {
	for _, labels := range r.pods {
		match := true
		for k, v := range sel {
			if labels[k] != v {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

var kustomizations = []string{"kubernetes/base", "kubernetes/overlays/redis", "kubernetes/overlays/redis-cluster"}

// TestKustomizationsRender builds every kustomization, decodes each object
// strictly, and checks that the objects refer to each other correctly.
func TestKustomizationsRender(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(dir, func(t *testing.T) {
			r := render(t, dir)
			deps := find[*appsv1.Deployment](r)
			if len(deps) != 1 || deps[0].Name != "parley" {
				t.Fatalf("want exactly the parley Deployment, got %d", len(deps))
			}
			checkParley(t, deps[0], find[*corev1.ConfigMap](r))
			checkReferences(t, r)
		})
	}
}

// checkParley holds the Deployment to the server's behaviour: its health
// endpoints, its shutdown, its memory guard and the keys it needs.
func checkParley(t *testing.T, d *appsv1.Deployment, cms []*corev1.ConfigMap) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("parley pod has %d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	if !strings.HasPrefix(c.Image, "ghcr.io/parleyhq/parley:") {
		t.Errorf("image %q", c.Image)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[name]
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want {
			t.Errorf("%s probe must GET %s: %+v", name, want, p)
			continue
		}
		if _, ok := ports[p.HTTPGet.Port.StrVal]; !ok {
			t.Errorf("%s probe port %v is not a container port", name, p.HTTPGet.Port)
		}
	}
	env := map[string]string{}
	for _, cm := range cms {
		if cm.Name == "parley-config" {
			maps.Copy(env, cm.Data)
		}
	}
	secrets := map[string]bool{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			secrets[e.Name] = true
		} else {
			env[e.Name] = e.Value
		}
	}
	for _, name := range []string{"PARLEY_ADMIN_KEY", "PARLEY_SECRET_KEY"} {
		if !secrets[name] {
			t.Errorf("%s must come from a Secret", name)
		}
	}
	if env["REDIS_URL"] == "" && !secrets["REDIS_URL"] {
		t.Error("REDIS_URL is not set: replicas would each use their own embedded store")
	}
	if env["PARLEY_ADDR"] != fmt.Sprintf(":%d", ports["http"]) {
		t.Errorf("PARLEY_ADDR %q does not listen on the http port %d", env["PARLEY_ADDR"], ports["http"])
	}

	// Shutdown: the grace period covers the preStop pause and the drain.
	shutdown, err := time.ParseDuration(env["PARLEY_SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("PARLEY_SHUTDOWN_TIMEOUT: %v", err)
	}
	var pause time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		pause = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if pause == 0 {
		t.Error("no preStop pause: the pod would stop before the Service stops sending it requests")
	}
	grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	if grace < shutdown+pause+5*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v does not cover the preStop pause %v, PARLEY_SHUTDOWN_TIMEOUT %v and a 5s margin",
			grace, pause, shutdown)
	}

	// Memory: the heap guard fires below GOMEMLIMIT, which is below the
	// container's limit with room for what is not Go heap.
	heap := parseSize(t, env["PARLEY_SANDBOX_HEAP_LIMIT"])
	gomem := parseSize(t, env["GOMEMLIMIT"])
	limit, ok := c.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		t.Fatal("no memory limit")
	}
	if req := c.Resources.Requests[corev1.ResourceMemory]; req.Cmp(limit) != 0 {
		t.Errorf("memory request %s differs from the limit %s: the pod could be evicted under node pressure", req.String(), limit.String())
	}
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
		t.Error("no CPU request: the autoscaler's utilization target needs one")
	}
	if !(heap < gomem && float64(gomem) <= 0.9*float64(limit.Value())) {
		t.Errorf("want PARLEY_SANDBOX_HEAP_LIMIT (%d) < GOMEMLIMIT (%d) <= 90%% of the memory limit (%d)", heap, gomem, limit.Value())
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("the container must run with a read-only root and no privilege escalation")
	}
}

// parseSize reads a size as Parley and the Go runtime write it (768MiB).
func parseSize(t *testing.T, s string) int64 {
	t.Helper()
	q, err := resource.ParseQuantity(strings.TrimSuffix(strings.TrimSuffix(s, "B"), "b"))
	if err != nil {
		t.Fatalf("size %q: %v", s, err)
	}
	return q.Value()
}

// checkReferences checks that every selector selects a pod, and every
// name and port an object refers to exists in the same render.
func checkReferences(t *testing.T, r *rendered) {
	t.Helper()
	services := map[string]*corev1.Service{}
	for _, s := range find[*corev1.Service](r) {
		services[s.Name] = s
		if !r.selects(s.Spec.Selector) {
			t.Errorf("Service %s selects no pod: %v", s.Name, s.Spec.Selector)
		}
	}
	for _, np := range find[*networkingv1.NetworkPolicy](r) {
		sels := []map[string]string{np.Spec.PodSelector.MatchLabels}
		for _, in := range np.Spec.Ingress {
			for _, p := range in.From {
				if p.PodSelector != nil {
					sels = append(sels, p.PodSelector.MatchLabels)
				}
			}
		}
		for _, out := range np.Spec.Egress {
			for _, p := range out.To {
				if p.PodSelector != nil {
					sels = append(sels, p.PodSelector.MatchLabels)
				}
			}
		}
		for _, sel := range sels {
			if !r.selects(sel) {
				t.Errorf("NetworkPolicy %s: selector %v selects no pod", np.Name, sel)
			}
		}
	}
	for _, pdb := range find[*policyv1.PodDisruptionBudget](r) {
		if !r.selects(pdb.Spec.Selector.MatchLabels) {
			t.Errorf("PodDisruptionBudget %s selects no pod", pdb.Name)
		}
	}
	for _, hpa := range find[*autoscalingv2.HorizontalPodAutoscaler](r) {
		if _, ok := r.pods[hpa.Spec.ScaleTargetRef.Name]; !ok || hpa.Spec.ScaleTargetRef.Kind != "Deployment" {
			t.Errorf("HorizontalPodAutoscaler %s scales %v, which is not here", hpa.Name, hpa.Spec.ScaleTargetRef)
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 {
			t.Errorf("HorizontalPodAutoscaler %s may scale below 2 replicas", hpa.Name)
		}
	}
	for _, ing := range find[*networkingv1.Ingress](r) {
		for _, rule := range ing.Spec.Rules {
			for _, p := range rule.HTTP.Paths {
				svc := services[p.Backend.Service.Name]
				if svc == nil || !hasPort(svc, p.Backend.Service.Port.Name) {
					t.Errorf("Ingress %s routes to %s port %q, which does not exist", ing.Name, p.Backend.Service.Name, p.Backend.Service.Port.Name)
				}
			}
		}
	}
	for _, sm := range find[*monitoringv1.ServiceMonitor](r) {
		scraped := false
		for _, svc := range services {
			if !contains(svc.Labels, sm.Spec.Selector.MatchLabels) {
				continue
			}
			for _, ep := range sm.Spec.Endpoints {
				if hasPort(svc, ep.Port) && ep.Path == "/metrics" {
					scraped = true
				}
			}
		}
		if !scraped {
			t.Errorf("ServiceMonitor %s scrapes no Service's /metrics", sm.Name)
		}
	}
}

func hasPort(s *corev1.Service, name string) bool {
	for _, p := range s.Spec.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

func contains(labels, sel map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestRedisClusterOverlay checks that Parley is pointed at the cluster's
// own nodes, in cluster mode.
func TestRedisClusterOverlay(t *testing.T) {
	r := render(t, "kubernetes/overlays/redis-cluster")
	var url string
	for _, e := range find[*appsv1.Deployment](r)[0].Spec.Template.Spec.Containers[0].Env {
		if e.Name == "REDIS_URL" {
			url = e.Value
		}
	}
	// Options go on the first address only; the others are further seeds.
	first, _, _ := strings.Cut(url, ",")
	if !strings.HasSuffix(first, "/0?cluster=true") {
		t.Errorf("REDIS_URL %q is not in cluster mode (the first address carries the options)", url)
	}
	sets := find[*appsv1.StatefulSet](r)
	if len(sets) != 1 || *sets[0].Spec.Replicas != 6 {
		t.Fatalf("want one StatefulSet of 6 nodes")
	}
	host := strings.TrimSuffix(strings.TrimPrefix(first, "redis://"), "/0?cluster=true")
	want := sets[0].Name + "-0." + sets[0].Spec.ServiceName + ":6379"
	if host != want {
		t.Errorf("first seed node %q, want %q", host, want)
	}
}
