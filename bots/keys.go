package bots

// keyspace builds every Redis key the catalog uses, from the configured
// prefix. Every key of one bot carries the hash tag {bot}, so each multi-key
// update of a bot is atomic on one Redis Cluster slot.
type keyspace struct{ prefix string }

// botKeys are the keys of one bot's catalog data.
type botKeys struct {
	settings, channels, current, nlu, gen string
	// secrets holds the bot's secrets, sealed: name -> storedSecret as JSON.
	secrets string
	// rollouts holds, per intent, its canary (version and percent) and the
	// previous stable version, as JSON.
	rollouts string
	// nluSum is the sha1 of the NLU data; model is the sha1 of the data it
	// was trained on followed by the serialized model; training is the
	// lease of the replica training a model for the data with that sha1.
	nluSum, model, training string
}

// botPrefix starts every catalog key of bot (see [Catalog.BotKeyPrefixes]).
func (ks keyspace) botPrefix(bot string) string { return ks.prefix + "bot:{" + bot + "}:" }

// bot returns the keys of bot's catalog data.
func (ks keyspace) bot(bot string) botKeys {
	base := ks.botPrefix(bot)
	return botKeys{settings: base + "settings", channels: base + "channels", current: base + "intents",
		nlu: base + "nlu", gen: base + "gen", secrets: base + "secrets", rollouts: base + "rollouts",
		nluSum: base + "nlu:sum", model: base + "nlu:model", training: base + "nlu:training"}
}

// intent is the hash of an intent's stored versions: src:N and meta:N.
func (ks keyspace) intent(bot, intent string) string { return ks.botPrefix(bot) + "intent:" + intent }

// index is the set of every bot's name.
func (ks keyspace) index() string { return ks.prefix + "bots" }

// changes is the Pub/Sub channel on which changed bots are announced.
func (ks keyspace) changes() string { return ks.prefix + "changes" }

// deletion is a bot's deletion marker (a hash). It is outside the bot's
// prefix, so a sweep of that prefix keeps it.
func (ks keyspace) deletion(bot string) string { return ks.prefix + "deleting:{" + bot + "}" }

// deletionLease is the lease of the replica removing a deleted bot's data.
func (ks keyspace) deletionLease(bot string) string { return ks.deletion(bot) + ":lease" }

// deletions is the set of bots whose deletion has not finished.
func (ks keyspace) deletions() string { return ks.prefix + "bots:deleting" }

// keys returns the keys of bot's catalog data.
func (c *Catalog) keys(bot string) botKeys { return c.ks.bot(bot) }
