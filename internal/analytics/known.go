package analytics

import (
	"time"
)

// knownUsers remembers, for a while, the users whose index this process
// wrote, and the conversations it put there, so that a flush runs the user
// script only for users it may change: a user of whom it knows every
// conversation of the batch, with no fallback utterance to remember, needs
// nothing written. For those the flush only reads whether the index is
// still the one it wrote, by the time the user was first seen: an erasure
// or a purge deletes the index, and whatever indexes the user again
// afterwards writes another time. It also reads the user's erasure marker,
// to suppress the turns an erasure came after. A user whose index changed
// is forgotten and goes through the user script.
//
// Most turns are not a user's first in a conversation: with the cache a
// flush costs Redis two reads per such user instead of a script call that
// writes three keys.
type knownUsers struct {
	m map[[2]string]*knownUser
}

// knownUser is what a flush wrote of a user's index.
type knownUser struct {
	keys    userKeys
	first   int64               // the index's first-seen time (Unix ms), as read when it was written
	convs   map[string]struct{} // conversations written to the index
	expires time.Time
}

const (
	// knownFor is how long a user's entry is trusted; the user script
	// runs again after it.
	knownFor = 10 * time.Minute
	// maxKnownUsers bounds the entries (about 600 bytes each, so 30 MB at
	// most); when it is reached, the expired ones go, and all of them if
	// none has expired. A tenant that makes up many users can only push
	// others' entries out, which costs them the user script again.
	maxKnownUsers = 50_000
	// maxKnownConvs bounds the conversations of one entry; a user with more
	// is forgotten, and indexed by the script as before.
	maxKnownConvs = 64
)

// get returns the user's entry, if it is there and has not expired.
func (k *knownUsers) get(id [2]string, now time.Time) *knownUser {
	u := k.m[id]
	if u == nil || !now.Before(u.expires) {
		return nil
	}
	return u
}

func (u *knownUser) has(conv string) bool {
	_, ok := u.convs[conv]
	return ok
}

// add records that the user's index, first seen at first, holds convs.
func (k *knownUsers) add(id [2]string, keys userKeys, first int64, convs []string, now time.Time) {
	u := k.m[id]
	if u == nil || u.first != first || !now.Before(u.expires) {
		if len(k.m) >= maxKnownUsers {
			k.prune(now)
		}
		u = &knownUser{keys: keys, first: first, convs: make(map[string]struct{}, len(convs)), expires: now.Add(knownFor)}
		k.m[id] = u
	}
	for _, c := range convs {
		u.convs[c] = struct{}{}
	}
	if len(u.convs) > maxKnownConvs {
		delete(k.m, id)
	}
}

// forget drops the user's entry.
func (k *knownUsers) forget(id [2]string) { delete(k.m, id) }

// prune drops the expired entries, or all of them if none has expired.
func (k *knownUsers) prune(now time.Time) {
	before := len(k.m)
	for id, u := range k.m {
		if !now.Before(u.expires) {
			delete(k.m, id)
		}
	}
	if len(k.m) == before {
		clear(k.m)
	}
}
