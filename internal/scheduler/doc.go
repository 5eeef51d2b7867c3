// Package scheduler runs bots' cron schedules: at each fire time a schedule
// runs one intent's Lua handler, either once on its own or once per target
// conversation, pushing the reply through the target channel's send API
// (proactive messages such as daily reminders).
//
// Every replica runs a Scheduler; each fire time runs exactly once across all
// of them, because a replica must claim the (schedule, fire time) pair in Redis
// with SET NX before it runs it. A fire time missed while no replica was up is
// run late or skipped, as the schedule's "missed" setting says.
//
// Concurrency: a Scheduler is safe for concurrent use; Run blocks until its
// context ends.
//
// The user manual is docs/schedules.md.
package scheduler
