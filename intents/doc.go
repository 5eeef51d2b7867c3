// Package intents holds the normalized conversation types every other part of
// Parley speaks, and the router that decides which handler answers a turn.
//
// A channel adapter turns a platform webhook into an [Event]; the engine asks a
// [Router] for a [Decision]; the chosen Lua handler answers with a [Reply].
//
//	d := intents.Route(ev, intents.RouteInput{Expect: "AskSize", Has: bot.HasHandler, Classifier: m})
//	// d.Intent == "AskSize", d.Source == intents.SourceExpect
//
// Everything here is plain data and pure functions: safe for concurrent use,
// no I/O, no dependencies beyond the standard library.
package intents
