// Package intents decides which handler answers a turn.
//
// A channel adapter turns a platform webhook into a [msg.Event]; the engine
// asks [Route] for a [msg.Decision]; the chosen Lua handler answers with a
// [msg.Reply]. The precedence of the rules (the platform's intent, the
// expected intent, the classifier in package nlu, the fallback handler, a
// built-in answer) is documented on Route.
//
//	d := intents.Route(ev, intents.RouteInput{Expect: "AskSize", Has: bot.HasHandler, Classifier: m})
//	// d.Intent == "AskSize", d.Source == msg.SourceExpect
//
// Everything here is pure functions: safe for concurrent use, no I/O.
package intents
