// Package msg holds the message types every stage of a turn speaks: the
// normalized [Event] a channel adapter makes of a webhook, the routing
// [Decision], the handler's [Reply], the [TurnResult] an adapter renders,
// the [ConversationKey] every store files a conversation under, and the
// [Invocation] record of one handler call.
//
// It is a leaf: plain data and a few pure functions, no dependencies beyond
// the standard library, so that any package may import it without pulling in
// another stage of the pipeline.
package msg
