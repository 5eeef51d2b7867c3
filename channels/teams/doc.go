// Package teams is the Microsoft Teams channel: the Bot Framework protocol
// (activities posted by the Bot Connector, replies through its REST API).
//
// Every activity carries the connector's token (Authorization: Bearer),
// which [Verifier] checks against the Bot Framework's OpenID metadata and
// key set: RS256, issuer https://api.botframework.com, audience the bot's
// app_id, exp and nbf within five minutes, a key endorsed for the
// activity's channelId, and a serviceurl claim equal to the activity's
// serviceUrl. A refused token is a 401.
//
// Message activities become events processed asynchronously (the
// activity is acknowledged with an empty 200): the text without the bot's
// own mention, or for a press of an Adaptive Card's Action.Submit (or a
// messageBack) the activity's value as the postback. Other activities are
// acknowledged and ignored. Conversations are Bot Framework conversation
// ids; users are from.aadObjectId, or from.id; event ids are the
// conversation and the activity id, which the connector repeats on retries.
//
// Replies are posted to {serviceUrl}/v3/conversations/{id}/activities/{replyToId}
// (pushes without an activity to answer, to …/activities on the configured
// service URL) with a token of the client-credentials grant, cached per
// bot until five minutes before it expires. The serviceUrl a token is sent
// to is always one a verified activity named, and https (http only on the
// loopback interface, for a local connector in tests). Rich
// replies are Adaptive Cards (rich.go).
//
// Settings: app_id, app_password (secret) and tenant_id (single-tenant
// apps). The metadata, token and push endpoints are server configuration
// ([Config]), never a bot's.
//
// Concurrency: an Adapter is safe for concurrent use.
//
// The user manual is docs/channels/teams.md.
package teams
