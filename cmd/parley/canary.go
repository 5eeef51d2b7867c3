package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/bots"
)

// canaryCommand changes an intent's running canary:
//
//	parley canary BOT INTENT PERCENT   give the canary PERCENT of new conversations
//	parley canary BOT INTENT promote   make the canary the stable version
//	parley canary BOT INTENT abort     drop the canary
func canaryCommand(args, environ []string, stdout io.Writer) error {
	flags, rest, err := parseFlags(args)
	if err != nil {
		return err
	}
	if len(rest) != 3 {
		return usageError{"canary takes BOT INTENT and a percentage, promote or abort"}
	}
	c, err := newClient(flags, environ)
	if err != nil {
		return err
	}
	path := "/v1/bots/" + url.PathEscape(rest[0]) + "/intents/" + url.PathEscape(rest[1]) + "/canary"
	var out struct {
		Version  int          `json:"version"`
		Canary   *bots.Canary `json:"canary"`
		Previous int          `json:"previous"`
	}
	switch action := rest[2]; action {
	case "promote", "abort":
		err = c.do("POST", path+"/"+action, nil, &out)
	default:
		p, perr := strconv.Atoi(strings.TrimSuffix(action, "%"))
		if perr != nil || p < 0 || p > 100 {
			return usageError{fmt.Sprintf("canary: %q is not a percentage from 0 to 100, promote or abort", action)}
		}
		err = c.do("PUT", path, map[string]int{"percent": p}, &out)
	}
	if err != nil {
		return fmt.Errorf("%s/%s: %w", rest[0], rest[1], err)
	}
	fmt.Fprintf(stdout, "intent %s: stable version %d", rest[1], out.Version)
	if out.Canary != nil {
		fmt.Fprintf(stdout, ", canary version %d at %d%%", out.Canary.Version, out.Canary.Percent)
	}
	if out.Previous != 0 {
		fmt.Fprintf(stdout, ", previous version %d kept for its conversations", out.Previous)
	}
	fmt.Fprintln(stdout)
	return nil
}
