package llm

import (
	"encoding/json"
	"testing"
)

// slowChunk reads a chunk as the encoding/json path does, into the same
// shape as fastChunk.
func slowChunk(data []byte) (fastChunk, bool) {
	var ch chunk
	if err := json.Unmarshal(data, &ch); err != nil || (len(ch.Error) > 0 && string(ch.Error) != "null") {
		return fastChunk{}, false
	}
	out := fastChunk{model: ch.Model, usage: ch.Usage}
	for _, c := range ch.Choices {
		if c.Index != 0 {
			continue
		}
		if len(c.Delta.ToolCalls) > 0 {
			return fastChunk{}, false
		}
		switch {
		case c.Delta.Content != nil:
			out.piece += *c.Delta.Content
		case c.Delta.Refusal != nil:
			out.piece += *c.Delta.Refusal
		}
		if c.FinishReason != nil && *c.FinishReason != "" {
			out.finish = *c.FinishReason
		}
	}
	return out, true
}

var chunkSeeds = []string{
	`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" Hello"},"logprobs":null,"finish_reason":null}],"usage":null}`,
	`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}`,
	`{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`,
	`{"id":"c","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42,"prompt_tokens_details":{"cached_tokens":0}}}`,
	`{"id":"c","choices":null,"usage":{"prompt_tokens":12,"completion_tokens":30}}`,
	`{"choices":[{"index":0,"delta":{"content":"caf\u00e9 \ud83c\udf55 \"quoted\" \\ \/ \n"}}]}`,
	`{"choices":[{"index":0,"delta":{"content":"lone \ud83c half"}}]}`,
	`{"choices":[{"index":0,"delta":{"refusal":"I can't help with that."}}]}`,
	`{"choices":[{"index":1,"delta":{"content":"second"}},{"index":0,"delta":{"content":"first"}}]}`,
	`{"choices":[{"index":0,"delta":{"content":"x","obfuscation":"abc"}}],"obfuscation":"q"}`,
	`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\""}}]}}]}`,
	`{"error":{"message":"overloaded","type":"server_error"}}`,
	`{"choices":[{"index":0,"delta":{"Content":"case"}}]}`,
	`{"choices":[{"index":0,"delta":{"content":"a"},"delta":{"content":"b"}}]}`,
	`{"choices":[{"index":0.0,"delta":{"content":"a"}}]}`,
	`  {"choices" : [ { "index" : 0 , "delta" : { "content" : "spaced" } } ] }  `,
	`{"choices":[{"index":0,"delta":{"content":"\u0000\u001f"}}],"usage":{"prompt_tokens":1e2}}`,
	`{"model":null,"choices":[{"index":0,"delta":null,"finish_reason":"length"}]}`,
}

// FuzzFastChunk: a chunk decodeFast takes reads as encoding/json reads it.
func FuzzFastChunk(f *testing.F) {
	for _, s := range chunkSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast fastChunk
		if !decodeFast(data, &fast) {
			return
		}
		slow, ok := slowChunk(data)
		if !ok {
			t.Fatalf("decodeFast took %q, which encoding/json refuses", data)
		}
		if fast.model != slow.model || fast.piece != slow.piece || fast.finish != slow.finish ||
			(fast.usage == nil) != (slow.usage == nil) || fast.usage != nil && *fast.usage != *slow.usage {
			t.Fatalf("%q: fast %+v (usage %v), encoding/json %+v (usage %v)", data, fast, fast.usage, slow, slow.usage)
		}
	})
}

// TestFastChunkTakesTheCommonChunks: the chunks of a plain streamed answer
// are read by the fast path.
func TestFastChunkTakesTheCommonChunks(t *testing.T) {
	for _, s := range chunkSeeds[:10] {
		var c fastChunk
		if !decodeFast([]byte(s), &c) {
			t.Errorf("not taken: %s", s)
		}
	}
	for _, s := range chunkSeeds[10:15] {
		var c fastChunk
		if decodeFast([]byte(s), &c) {
			t.Errorf("taken: %s", s)
		}
	}
}
