// Package llm calls OpenAI-compatible chat completion APIs for the
// sandbox's llm module: [Client] implements [sandbox.LLM].
//
//	c := llm.New(llm.Config{HTTP: egressClient, Secrets: secrets,
//		Budget: llm.NewRedisBudget(rdb, "parley:"), Meter: metrics})
//	rt := sandbox.New(sandbox.Config{LLM: c})
//
// A call goes to POST {llm_base_url}/chat/completions through internal/egress:
// the base URL's host is reachable without being in the bot's http_allow,
// but a private address only when http_allow names it literally. The API
// key is read from the bot's secret named by llm_api_key_secret (through
// [Secrets]) and sent as a bearer token; it never appears in errors or logs.
//
// With stream set, the answer is read as server-sent events and each piece
// of text is handed to the request's OnText as it arrives; tool calls are
// put together from their fragments, and the usage comes from the final
// chunk (stream_options.include_usage). A 408, 409, 429 or 5xx answer (or
// one whose x-should-retry says so) is sent again after the API's
// Retry-After (or retry-after-ms), else after a backoff, but only while the
// wait leaves time before the turn's deadline; an answer that has started
// is never sent again. insufficient_quota is not retried.
//
// llm_tokens_per_day is checked before a call against the bot's count of
// the UTC day ([Budget]; [RedisBudget] keeps it in Redis for every replica)
// and the call's tokens are added after it, so a call that starts under
// the budget may end over it. A budget store that cannot answer lets calls
// through. Every call is reported to the [Meter] with its bot, model,
// outcome and tokens.
//
// Errors are what scripts see: "budget exhausted", "no API key: secret X
// is not set" (the secret store answered sandbox.ErrSecretNotSet), or
// "llm: ..." with the API's status, code and message.
//
// Concurrency: a Client is safe for concurrent use; OnText is called on
// the calling goroutine.
//
// Why the standard library rather than an SDK: docs/dependencies.md.
package llm
