// Package botdir reads a bot directory (bot.yaml and one Lua handler per
// intent under intents/) and deploys it through the management API: the
// format `parley deploy`, `parley test` and `parley dev` share.
//
//	b, err := botdir.Read("examples/pizzabot", botdir.Options{Env: botdir.EnvOf(os.Environ()), Secrets: app.ChannelSecrets()})
//	// err: examples/pizzabot/bot.yaml:3: unknown field "setings"
//	_, err = botdir.Deploy(ctx, apiclient.New(url, key), b, botdir.DeployOptions{Out: os.Stdout})
//
// Read checks everything it can before anything is deployed (every key of
// bot.yaml, every setting, every script compiles) and reports the first
// problem with its file and line. The user manual is docs/getting-started.md.
package botdir
