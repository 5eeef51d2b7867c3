package adminapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/internal/apierr"
	"github.com/parleyhq/parley/internal/queue"
)

// Queue keeps the dead letters and parked conversations of asynchronous
// channels; *queue.Queue implements it.
type Queue interface {
	DeadLetters(ctx context.Context, bot string, limit int64) ([]queue.DeadLetter, error)
	Replay(ctx context.Context, bot, id string) error
	DeleteDeadLetter(ctx context.Context, bot, id string) error
	// Parked lists a bot's conversations whose events wait for their turn.
	Parked(ctx context.Context, bot string, limit int) ([]queue.ParkedConversation, error)
}

// Dead letters and parked conversations listed at most per request.
const (
	defaultDeadLetterLimit = 100
	maxDeadLetterLimit     = 1000
)

// errNoQueue answers the dead letter routes of a server without a queue.
var errNoQueue = apierr.New(http.StatusNotFound, "dead_letter_not_found", "unknown dead letter")

// queueFor checks that the bot exists and that there is a queue.
func (a *API) queueFor(c *gin.Context) (Queue, error) {
	if err := a.requireBot(c); err != nil {
		return nil, err
	}
	if a.cfg.Queue == nil {
		return nil, errNoQueue
	}
	return a.cfg.Queue, nil
}

// listLimit reads the limit query parameter of a listing: 1..1000,
// default 100.
func listLimit(c *gin.Context) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return defaultDeadLetterLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxDeadLetterLimit {
		return 0, invalid("limit must be 1..1000")
	}
	return n, nil
}

func (a *API) listDeadLetters(c *gin.Context) error {
	q, err := a.queueFor(c)
	if err != nil {
		return err
	}
	limit, err := listLimit(c)
	if err != nil {
		return err
	}
	list, err := q.DeadLetters(c, c.Param("bot"), int64(limit))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"deadletters": list})
	return nil
}

// listParked lists the bot's conversations whose events are parked: turns
// refused for now (a rate limit, a busy bot, a platform's 429) wait there,
// each conversation in order, until they are due.
func (a *API) listParked(c *gin.Context) error {
	q, err := a.queueFor(c)
	if err != nil {
		return err
	}
	limit, err := listLimit(c)
	if err != nil {
		return err
	}
	list, err := q.Parked(c, c.Param("bot"), limit)
	if err != nil {
		return err
	}
	if list == nil {
		list = []queue.ParkedConversation{}
	}
	c.JSON(http.StatusOK, gin.H{"parked": list})
	return nil
}

func (a *API) replayDeadLetter(c *gin.Context) error {
	q, err := a.queueFor(c)
	if err != nil {
		return err
	}
	if err := q.Replay(c, c.Param("bot"), c.Param("id")); err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, gin.H{"replayed": c.Param("id")})
	return nil
}

func (a *API) deleteDeadLetter(c *gin.Context) error {
	q, err := a.queueFor(c)
	if err != nil {
		return err
	}
	if err := q.DeleteDeadLetter(c, c.Param("bot"), c.Param("id")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
