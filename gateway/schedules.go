package gateway

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/parleyhq/parley/scheduler"
)

// Schedules stores bots' cron schedules; *scheduler.Scheduler implements it.
type Schedules interface {
	Put(ctx context.Context, bot, name string, sc scheduler.Schedule) (scheduler.Schedule, error)
	Get(ctx context.Context, bot, name string) (scheduler.Schedule, error)
	List(ctx context.Context, bot string) (map[string]scheduler.Schedule, error)
	Delete(ctx context.Context, bot, name string) error
	Runs(ctx context.Context, bot string, limit int) ([]scheduler.RunRecord, error)
}

func (s *Server) scheduleRoutes(v1 *gin.RouterGroup) {
	v1.GET("/bots/:bot/schedules", s.listSchedules)
	v1.PUT("/bots/:bot/schedules/:name", s.putSchedule)
	v1.GET("/bots/:bot/schedules/:name", s.getSchedule)
	v1.DELETE("/bots/:bot/schedules/:name", s.deleteSchedule)
}

// requireBot fails the request unless the bot exists.
func (s *Server) requireBot(c *gin.Context) bool {
	if _, err := s.cfg.Catalog.Bot(c, c.Param("bot")); err != nil {
		s.fail(c, err)
		return false
	}
	return true
}

func (s *Server) listSchedules(c *gin.Context) {
	if !s.requireBot(c) {
		return
	}
	list, err := s.cfg.Schedules.List(c, c.Param("bot"))
	if err != nil {
		s.fail(c, err)
		return
	}
	runs, err := s.cfg.Schedules.Runs(c, c.Param("bot"), 50)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"schedules": list, "runs": runs})
}

func (s *Server) putSchedule(c *gin.Context) {
	if !s.requireBot(c) {
		return
	}
	var sc scheduler.Schedule
	if err := s.decode(c, &sc, false); err != nil {
		s.fail(c, err)
		return
	}
	saved, err := s.cfg.Schedules.Put(c, c.Param("bot"), c.Param("name"), sc)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"name": c.Param("name"), "schedule": saved})
}

func (s *Server) getSchedule(c *gin.Context) {
	if !s.requireBot(c) {
		return
	}
	sc, err := s.cfg.Schedules.Get(c, c.Param("bot"), c.Param("name"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"name": c.Param("name"), "schedule": sc})
}

func (s *Server) deleteSchedule(c *gin.Context) {
	if err := s.cfg.Schedules.Delete(c, c.Param("bot"), c.Param("name")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
