// Package docs holds Parley's documentation files and embeds the one the
// server serves: the OpenAPI 3.1 description of the HTTP API
// (openapi.yaml), which the gateway answers at GET /v1/openapi.json.
//
// Concurrency: the functions are safe for concurrent use.
package docs
