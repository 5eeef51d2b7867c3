package bots

import (
	"strings"
	"testing"
)

func TestLLMSettings(t *testing.T) {
	for _, ok := range []Settings{
		{},
		{LLMBaseURL: "https://api.openai.com/v1", LLMAPIKeySecret: "OPENAI_API_KEY", LLMModel: "gpt-4o-mini", LLMTokensPerDay: 100000},
		{LLMBaseURL: "http://127.0.0.1:8000/v1", LLMModel: "llama-3.1-8b-instruct"},
		{LLMBaseURL: "https://example.com", LLMAPIKeySecret: "LLM_KEY_2"},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, tc := range []struct {
		s    Settings
		want string
	}{
		{Settings{LLMBaseURL: "api.openai.com/v1"}, "llm_base_url"},
		{Settings{LLMBaseURL: "ftp://api.openai.com/v1"}, "llm_base_url"},
		{Settings{LLMBaseURL: "https:///v1"}, "llm_base_url"},
		{Settings{LLMBaseURL: "https://user:pw@api.openai.com/v1"}, "credentials"},
		{Settings{LLMBaseURL: "https://api.openai.com/v1?key=x"}, "query"},
		{Settings{LLMBaseURL: "https://api.openai.com/v1#x"}, "query"},
		{Settings{LLMBaseURL: "https://api.openai.com/" + strings.Repeat("a", 2048)}, "longer"},
		{Settings{LLMAPIKeySecret: "a b"}, "llm_api_key_secret"},
		{Settings{LLMAPIKeySecret: "openai_key"}, "llm_api_key_secret"},
		{Settings{LLMAPIKeySecret: strings.Repeat("A", 65)}, "llm_api_key_secret"},
		{Settings{LLMModel: "gpt\n4"}, "llm_model"},
		{Settings{LLMModel: strings.Repeat("m", 257)}, "llm_model"},
		{Settings{LLMTokensPerDay: -1}, "llm_tokens_per_day"},
	} {
		err := tc.s.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want an error naming %s", tc.s, err, tc.want)
		}
	}
}

func TestParseLLMSettings(t *testing.T) {
	s, err := ParseSettings([]byte(`{"llm_base_url": "https://api.openai.com/v1", "llm_api_key_secret": "OPENAI_API_KEY",
		"llm_model": "gpt-4o-mini", "llm_tokens_per_day": "250000"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{LLMBaseURL: "https://api.openai.com/v1", LLMAPIKeySecret: "OPENAI_API_KEY", LLMModel: "gpt-4o-mini", LLMTokensPerDay: 250000}
	if s.LLMBaseURL != want.LLMBaseURL || s.LLMAPIKeySecret != want.LLMAPIKeySecret || s.LLMModel != want.LLMModel ||
		s.LLMTokensPerDay != want.LLMTokensPerDay {
		t.Fatalf("parsed %+v, want %+v", s, want)
	}
}
