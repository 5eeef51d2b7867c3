package adminapi

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/parleyhq/parley/internal/scheduler"
)

// Schedules stores bots' cron schedules; *scheduler.Scheduler implements it.
type Schedules interface {
	Put(ctx context.Context, bot, name string, sc scheduler.Schedule) (scheduler.Schedule, error)
	Get(ctx context.Context, bot, name string) (scheduler.Schedule, error)
	List(ctx context.Context, bot string) (map[string]scheduler.Schedule, error)
	Delete(ctx context.Context, bot, name string) error
	Runs(ctx context.Context, bot string, limit int) ([]scheduler.RunRecord, error)
}

func (a *API) listSchedules(c *gin.Context) error {
	if err := a.requireBot(c); err != nil {
		return err
	}
	list, err := a.cfg.Schedules.List(c, c.Param("bot"))
	if err != nil {
		return err
	}
	runs, err := a.cfg.Schedules.Runs(c, c.Param("bot"), 50)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"schedules": list, "runs": runs})
	return nil
}

func (a *API) putSchedule(c *gin.Context) error {
	if err := a.requireBot(c); err != nil {
		return err
	}
	var sc scheduler.Schedule
	if err := a.decode(c, &sc, false); err != nil {
		return err
	}
	saved, err := a.cfg.Schedules.Put(c, c.Param("bot"), c.Param("name"), sc)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"name": c.Param("name"), "schedule": saved})
	return nil
}

func (a *API) getSchedule(c *gin.Context) error {
	if err := a.requireBot(c); err != nil {
		return err
	}
	sc, err := a.cfg.Schedules.Get(c, c.Param("bot"), c.Param("name"))
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"name": c.Param("name"), "schedule": sc})
	return nil
}

func (a *API) deleteSchedule(c *gin.Context) error {
	if err := a.cfg.Schedules.Delete(c, c.Param("bot"), c.Param("name")); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
	return nil
}
