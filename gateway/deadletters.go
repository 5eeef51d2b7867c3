package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/intents"
	"github.com/parleyhq/parley/queue"
)

// Queue is the durable queue of asynchronous channels; *queue.Queue
// implements it.
type Queue interface {
	// Enqueue stores an event; false means the delivery was seen before.
	Enqueue(ctx context.Context, ev *intents.Event) (bool, error)
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

var errDeadLetterNotFound = newError(http.StatusNotFound, "dead_letter_not_found", "unknown dead letter")

func (s *Server) deadLetterRoutes(v1 *gin.RouterGroup) {
	v1.GET("/bots/:bot/deadletters", s.listDeadLetters)
	v1.POST("/bots/:bot/deadletters/:id/replay", s.replayDeadLetter)
	v1.DELETE("/bots/:bot/deadletters/:id", s.deleteDeadLetter)
	v1.GET("/bots/:bot/parked", s.listParked)
}

// enqueue stores the events of an asynchronous channel and acknowledges the
// webhook at once. A delivery seen before is acknowledged without being
// stored again; a store failure answers 503 so the platform retries.
func (s *Server) enqueue(c *gin.Context, in *channels.Inbound) {
	if s.cfg.Queue == nil {
		s.fail(c, errors.New("gateway: an asynchronous channel needs the queue"))
		return
	}
	for _, ev := range in.Events {
		if _, err := s.cfg.Queue.Enqueue(c, ev); err != nil {
			s.fail(c, err)
			return
		}
	}
	resp := in.Response
	if resp == nil {
		resp = &channels.Response{Status: http.StatusOK}
	}
	write(c, resp)
}

// queueFor checks that the bot exists and that there is a queue.
func (s *Server) queueFor(c *gin.Context) (Queue, bool) {
	if _, err := s.cfg.Catalog.Bot(c, c.Param("bot")); err != nil {
		s.fail(c, err)
		return nil, false
	}
	if s.cfg.Queue == nil {
		s.fail(c, errDeadLetterNotFound)
		return nil, false
	}
	return s.cfg.Queue, true
}

// listLimit reads the limit query parameter of a listing: 1..1000,
// default 100.
func (s *Server) listLimit(c *gin.Context) (int, bool) {
	v := c.Query("limit")
	if v == "" {
		return defaultDeadLetterLimit, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxDeadLetterLimit {
		s.fail(c, newError(http.StatusBadRequest, "invalid", "limit must be 1..1000"))
		return 0, false
	}
	return n, true
}

func (s *Server) listDeadLetters(c *gin.Context) {
	q, ok := s.queueFor(c)
	if !ok {
		return
	}
	limit, ok := s.listLimit(c)
	if !ok {
		return
	}
	list, err := q.DeadLetters(c, c.Param("bot"), int64(limit))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"deadletters": list})
}

// listParked lists the bot's conversations whose events are parked: turns
// refused for now (a rate limit, a busy bot, a platform's 429) wait there,
// each conversation in order, until they are due.
func (s *Server) listParked(c *gin.Context) {
	q, ok := s.queueFor(c)
	if !ok {
		return
	}
	limit, ok := s.listLimit(c)
	if !ok {
		return
	}
	list, err := q.Parked(c, c.Param("bot"), limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	if list == nil {
		list = []queue.ParkedConversation{}
	}
	c.JSON(http.StatusOK, gin.H{"parked": list})
}

func (s *Server) replayDeadLetter(c *gin.Context) {
	q, ok := s.queueFor(c)
	if !ok {
		return
	}
	if err := q.Replay(c, c.Param("bot"), c.Param("id")); err != nil {
		s.fail(c, deadLetterError(err))
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"replayed": c.Param("id")})
}

func (s *Server) deleteDeadLetter(c *gin.Context) {
	q, ok := s.queueFor(c)
	if !ok {
		return
	}
	if err := q.DeleteDeadLetter(c, c.Param("bot"), c.Param("id")); err != nil {
		s.fail(c, deadLetterError(err))
		return
	}
	c.Status(http.StatusNoContent)
}

func deadLetterError(err error) error {
	if errors.Is(err, queue.ErrDeadLetterNotFound) {
		return errDeadLetterNotFound
	}
	return err
}
