package bots

import "strconv"

// Role is the part a handler version plays for its intent in a snapshot
// (see [Handler]). The values are in memory only, never stored.
type Role uint8

const (
	// RoleStable is the version conversations get outside the canary's
	// share.
	RoleStable Role = iota
	// RoleCanary is the version on trial for a share of new conversations.
	RoleCanary
	// RolePrevious is the stable version before the last promotion, kept
	// for the conversations that began on it.
	RolePrevious
)

// String returns "stable", "canary" or "previous".
func (r Role) String() string {
	switch r {
	case RoleStable:
		return "stable"
	case RoleCanary:
		return "canary"
	case RolePrevious:
		return "previous"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}
