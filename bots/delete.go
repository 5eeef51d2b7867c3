package bots

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Deleting a bot. DeleteBot removes the bot's settings and sets its deletion
// marker in one script, so the bot is gone for turns, webhooks and the API
// at once, while its name stays taken (PutBot answers ErrBotDeleting) until
// everything the bot owns has been removed. The removal itself is not the
// catalog's: whoever removes the data (internal/purge) finds the pending
// deletions with PendingDeletions, holds a lease with ClaimDeletion, reports
// progress with RecordDeletion and frees the name with FinishDeletion. The
// marker and the lease are under the bot's hash tag, outside the prefix of
// its catalog keys (BotKeyPrefixes), so a sweep of that prefix keeps them.

// DeletionStatus is the status of a bot under deletion.
const DeletionStatus = "deleting"

// Deletion is a bot's deletion under way.
type Deletion struct {
	// Bot is the bot's name.
	Bot string `json:"bot"`
	// Status is always DeletionStatus.
	Status string `json:"status"`
	// Started is when the deletion began.
	Started time.Time `json:"started"`
	// Removed counts the keys removed so far, by kind of data.
	Removed map[string]int64 `json:"removed,omitempty"`
}

// BotKeyPrefixes returns the prefixes of the catalog's keys of bot:
// settings, channels and their secrets, handlers and their versions,
// canaries, NLU data and model. Every key that starts with one of them is
// the bot's.
func (c *Catalog) BotKeyPrefixes(bot string) []string {
	return []string{c.ks.botPrefix(bot)}
}

// DeleteBot starts deleting a bot: from its return on the bot no longer
// exists, and its name cannot be used again until the deletion finishes
// (see [Catalog.FinishDeletion]). Deleting a bot whose deletion is under way
// returns that deletion. An unknown bot is ErrBotNotFound.
func (c *Catalog) DeleteBot(ctx context.Context, name string) (*Deletion, error) {
	if !botName.MatchString(name) {
		return nil, ErrBotNotFound
	}
	// Listed before the marker is set, so a process that stops in between
	// leaves a deletion that is found again; FinishDeletion drops entries
	// without a marker.
	if err := c.rdb.SAdd(ctx, c.ks.deletions(), name).Err(); err != nil {
		return nil, fmt.Errorf("delete bot %s: %w", name, err)
	}
	k := c.keys(name)
	started := time.Now().UTC().Truncate(time.Second)
	res, err := deleteBotScript.Run(ctx, c.rdb, []string{k.settings, k.gen, c.ks.deletion(name)},
		started.Format(time.RFC3339)).Int()
	if err != nil {
		return nil, fmt.Errorf("delete bot %s: %w", name, err)
	}
	if res == 0 {
		// Nothing to delete: drop the listing made above, unless a deletion
		// started meanwhile.
		if err := c.unlist(ctx, name); err != nil {
			return nil, err
		}
		return nil, ErrBotNotFound
	}
	// Again, in case a replica finishing a stale listing dropped it between
	// the first listing and the script.
	if err := c.rdb.SAdd(ctx, c.ks.deletions(), name).Err(); err != nil {
		return nil, fmt.Errorf("delete bot %s: %w", name, err)
	}
	if res == 1 {
		if err := c.rdb.SRem(ctx, c.ks.index(), name).Err(); err != nil {
			return nil, fmt.Errorf("delete bot %s: %w", name, err)
		}
		c.forget(name)
		c.announce(ctx, name)
	}
	d, err := c.Deletion(ctx, name)
	if err != nil {
		return nil, err
	}
	if d == nil { // finished in the meantime
		return &Deletion{Bot: name, Status: DeletionStatus, Started: started}, nil
	}
	return d, nil
}

// forget drops what this process keeps of a deleted bot: its training, its
// model, and the sandbox pools of every version it served (OnRetire).
func (c *Catalog) forget(name string) {
	c.trainers.cancel(name)
	c.models.drop(name)
	c.retireAll(name)
}

// Deletion returns the deletion under way of bot, or nil when there is none.
func (c *Catalog) Deletion(ctx context.Context, bot string) (*Deletion, error) {
	if !botName.MatchString(bot) {
		return nil, nil
	}
	fields, err := c.rdb.HGetAll(ctx, c.ks.deletion(bot)).Result()
	if err != nil {
		return nil, fmt.Errorf("read deletion of %s: %w", bot, err)
	}
	if len(fields) == 0 {
		return nil, nil
	}
	d := &Deletion{Bot: bot, Status: DeletionStatus}
	d.Started, _ = time.Parse(time.RFC3339, fields["started"])
	for f, v := range fields {
		if kind, ok := strings.CutPrefix(f, "removed:"); ok {
			if d.Removed == nil {
				d.Removed = make(map[string]int64)
			}
			d.Removed[kind], _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return d, nil
}

// PendingDeletions lists the bots whose deletion has not finished, sorted.
func (c *Catalog) PendingDeletions(ctx context.Context) ([]string, error) {
	names, err := c.rdb.SMembers(ctx, c.ks.deletions()).Result()
	if err != nil {
		return nil, fmt.Errorf("list deletions: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// ErrNotDeleting is returned by ClaimDeletion for a bot that is not being
// deleted.
var ErrNotDeleting = errors.New("the bot is not being deleted")

// ClaimDeletion takes, or renews, the lease on a bot's deletion for owner:
// it reports false while another owner's lease lasts, and ErrNotDeleting
// when the bot has no deletion under way.
func (c *Catalog) ClaimDeletion(ctx context.Context, bot, owner string, lease time.Duration) (bool, error) {
	res, err := claimDeletionScript.Run(ctx, c.rdb, []string{c.ks.deletion(bot), c.ks.deletionLease(bot)},
		owner, lease.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("claim deletion of %s: %w", bot, err)
	}
	if res < 0 {
		return false, ErrNotDeleting
	}
	return res == 1, nil
}

// ReleaseDeletion gives up owner's lease on a bot's deletion, so that
// another replica can take it up at once.
func (c *Catalog) ReleaseDeletion(ctx context.Context, bot, owner string) error {
	held, err := c.rdb.Get(ctx, c.ks.deletionLease(bot)).Result()
	if errors.Is(err, redis.Nil) || (err == nil && held != owner) {
		return nil
	}
	if err == nil {
		err = c.rdb.Del(ctx, c.ks.deletionLease(bot)).Err()
	}
	if err != nil {
		return fmt.Errorf("release deletion of %s: %w", bot, err)
	}
	return nil
}

// RecordDeletion adds removed (keys by kind of data) to the deletion's
// progress.
func (c *Catalog) RecordDeletion(ctx context.Context, bot string, removed map[string]int64) error {
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for kind, n := range removed {
			if n != 0 {
				p.HIncrBy(ctx, c.ks.deletion(bot), "removed:"+kind, n)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record deletion of %s: %w", bot, err)
	}
	return nil
}

// FinishDeletion ends a bot's deletion: the marker and the lease are
// removed and the name can be used again.
func (c *Catalog) FinishDeletion(ctx context.Context, bot string) error {
	if err := c.rdb.Del(ctx, c.ks.deletion(bot), c.ks.deletionLease(bot)).Err(); err != nil {
		return fmt.Errorf("finish deletion of %s: %w", bot, err)
	}
	return c.unlist(ctx, bot)
}

// unlist drops bot from the pending deletions unless it has a marker. A
// deletion that starts meanwhile lists the bot again after setting its
// marker (see DeleteBot), so it is never left unlisted.
func (c *Catalog) unlist(ctx context.Context, bot string) error {
	n, err := c.rdb.Exists(ctx, c.ks.deletion(bot)).Result()
	if err != nil {
		return fmt.Errorf("finish deletion of %s: %w", bot, err)
	}
	if n == 0 {
		if err := c.rdb.SRem(ctx, c.ks.deletions(), bot).Err(); err != nil {
			return fmt.Errorf("finish deletion of %s: %w", bot, err)
		}
	}
	return nil
}
