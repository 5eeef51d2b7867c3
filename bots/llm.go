package bots

import (
	"net/url"
	"strings"
	"unicode"
)

// Bounds of the llm settings.
const (
	maxLLMBaseURL      = 2048
	maxLLMModel        = 256
	maxLLMTokensPerDay = 1_000_000_000_000
)

// validateLLM checks the llm settings: an http(s) base URL with a host and
// nothing after its path, a secret's name, a printable model name, and a
// non-negative daily budget.
func (s Settings) validateLLM() error {
	if s.LLMBaseURL != "" {
		if err := ValidateLLMBaseURL(s.LLMBaseURL); err != nil {
			return err
		}
	}
	if s.LLMAPIKeySecret != "" {
		if err := ValidateSecretName(s.LLMAPIKeySecret); err != nil {
			return invalid("llm_api_key_secret: %s", err.Error())
		}
	}
	switch {
	case len(s.LLMModel) > maxLLMModel || strings.IndexFunc(s.LLMModel, notPrintable) >= 0:
		return invalid("llm_model must be at most %d printable characters", maxLLMModel)
	case s.LLMTokensPerDay < 0 || s.LLMTokensPerDay > maxLLMTokensPerDay:
		return invalid("llm_tokens_per_day must be between 0 (no bound) and %d", maxLLMTokensPerDay)
	}
	return nil
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) }

// ValidateLLMBaseURL checks an llm_base_url: an absolute http or https URL
// with a host, without credentials, query or fragment.
func ValidateLLMBaseURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case len(raw) > maxLLMBaseURL:
		return invalid("llm_base_url is longer than %d bytes", maxLLMBaseURL)
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || u.Opaque != "":
		return invalid("llm_base_url must be an http or https URL such as https://api.openai.com/v1")
	case u.User != nil:
		return invalid("llm_base_url must not hold credentials; name the API key's secret in llm_api_key_secret")
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(raw, "?") || strings.HasSuffix(raw, "#"):
		return invalid("llm_base_url must not have a query or fragment")
	}
	return nil
}
