package bots

import (
	"testing"

	"github.com/parleyhq/parley/internal/testredis"
)

func TestRoleString(t *testing.T) {
	for r, want := range map[Role]string{RoleStable: "stable", RoleCanary: "canary", RolePrevious: "previous", 7: "Role(7)"} {
		if got := r.String(); got != want {
			t.Errorf("Role(%d).String() = %q, want %q", uint8(r), got, want)
		}
	}
}

// TestRoleOfEveryVersionLoaded: a snapshot puts each stored version in the
// place its role gives it: stable, canary or previous.
func TestRoleOfEveryVersionLoaded(t *testing.T) {
	ctx := t.Context()
	c := New(testredis.Embedded(t), Config{})
	newBot(t, c, "shop")
	put := func(src string) {
		t.Helper()
		if _, _, err := c.PutHandler(ctx, "shop", "Order", src); err != nil {
			t.Fatal(err)
		}
	}
	put(versionSource("v1"))
	if _, err := c.PutCanary(ctx, "shop", "Order", versionSource("v2"), 30); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PromoteCanary(ctx, "shop", "Order"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutCanary(ctx, "shop", "Order", versionSource("v3"), 40); err != nil {
		t.Fatal(err)
	}
	b, err := c.Bot(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	h := b.Handlers["Order"]
	got := map[Role]int{RoleStable: h.Version, RoleCanary: h.Canary.Version, RolePrevious: h.Previous.Version}
	want := map[Role]int{RoleStable: 2, RoleCanary: 3, RolePrevious: 1}
	for r, v := range want {
		if got[r] != v {
			t.Errorf("%s version = %d, want %d", r, got[r], v)
		}
	}
	if h.CanaryPercent != 40 {
		t.Errorf("canary percent = %d, want 40", h.CanaryPercent)
	}
}
