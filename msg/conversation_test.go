package msg

import "testing"

func TestConversationKeyKeepsChannelsApart(t *testing.T) {
	tg, ms := KeyOf("telegram", "123"), KeyOf("messenger", "123")
	if tg == ms {
		t.Fatalf("telegram and messenger conversation 123 share the key %q", tg)
	}
	for _, tc := range []struct{ channel, conversation string }{
		{"web", "u1"}, {"twilio", "+15550077"}, {"web", "a:b/c%d é"}, {"web", ""}, {"slack", "D1:T1"},
	} {
		k := KeyOf(tc.channel, tc.conversation)
		ch, conv, ok := k.Split()
		if !ok || ch != tc.channel || conv != tc.conversation {
			t.Errorf("KeyOf(%q, %q) = %q splits into %q, %q, %v", tc.channel, tc.conversation, k, ch, conv, ok)
		}
	}
	if _, _, ok := ConversationKey("no-colon").Split(); ok {
		t.Error("a string without a colon split as a key")
	}
	if _, _, ok := ConversationKey(":x").Split(); ok {
		t.Error("a key without a channel split as a key")
	}
	ev := &Event{Channel: "web", Conversation: "u1"}
	if ev.Key() != "web:u1" {
		t.Errorf("Event.Key = %q", ev.Key())
	}
}
