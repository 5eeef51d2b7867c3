// Command parley runs the Parley server and talks to it.
//
//	parley serve                       run the gateway (embedded store unless REDIS_URL is set)
//	parley dev DIR                     serve a bot directory, redeploying it on every change
//	parley test DIR                    run DIR/tests/*.yaml, the bot's conversation tests, offline
//	parley deploy DIR                  upload a bot directory (bot.yaml + intents/*.lua)
//	parley invoke BOT TEXT...          run one turn and print the answer
//	parley canary BOT INTENT P|promote|abort  change a canary rollout
//	parley analytics BOT               print a bot's analytics
//	parley secret set|list|delete BOT  manage a bot's secrets (values from standard input)
//	parley nlu eval DATA.json|BOTDIR   evaluate the built-in intent classifier
//
// "parley help" and "parley COMMAND --help" list the rest. Each command is
// built in its own file by a newXCmd(*cli) function and listed in commands
// (root.go).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
