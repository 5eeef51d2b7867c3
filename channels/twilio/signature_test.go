package twilio

import (
	"net/url"
	"testing"

	twclient "github.com/twilio/twilio-go/client"
)

// Published vectors (Twilio's security docs and the official SDKs' request
// validator tests), all with the auth token "12345".
const token = "12345"

var docParams = url.Values{
	"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
	"From": {"+12349013030"}, "To": {"+18005551212"},
}

var sdkParams = url.Values{
	"CallSid": {"CA1234567890ABCDE"}, "Digits": {"1234"}, "From": {"+14158675309"},
	"To": {"+18005551212"}, "Caller": {"+14158675309"},
}

func TestSignatureVectors(t *testing.T) {
	tests := []struct {
		name   string
		url    string
		params url.Values
		want   string
	}{
		{"T0 docs example", "https://mycompany.com/myapp.php?foo=1&bar=2", docParams, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="},
		{"T1", "https://mycompany.com/myapp.php?foo=1&bar=2", sdkParams, "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{"T2 https with :443", "https://mycompany.com:443/myapp.php?foo=1&bar=2", sdkParams, "kvajT1Ptam85bY51eRf/AJRuM3w="},
		{"T3 http with :80", "http://mycompany.com:80/myapp.php?foo=1&bar=2", sdkParams, "0ZXoZLH/DfblKGATFgpif+LLRf4="},
		{"T4 other port", "http://mycompany.com:1234/myapp.php?foo=1&bar=2", sdkParams, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="},
		{"T4b http without port", "http://mycompany.com/myapp.php?foo=1&bar=2", sdkParams, "OyGYPqTF6ztdbRNCvuQO/oPvqQ4="},
		{"T8 repeated names, values sorted", "https://mycompany.com/myapp.php?foo=1&bar=2",
			url.Values{"Sid": {"CA123"}, "SidAccount": {"AC123"}, "Digits": {"5678", "1234"}}, "IK+Dwps556ElfBT0I3Rgjkr1wJU="},
		{"T9 names that prefix others sort by name", "https://mycompany.com/myapp.php?foo=1&bar=2",
			url.Values{"Sid": {"CA123"}, "SidAccount": {"AC123"}, "Digits": {"1234"}}, "CgUWP726jjuqn1zmicHVG/3A2ak="},
		{"TS SMS", "https://example.com/twilio/sms", form(t,
			"ToCountry=US&SmsMessageSid=SM11111111111111111111111111111111&NumMedia=0&SmsSid=SM11111111111111111111111111111111&SmsStatus=received&Body=Hello+bot&To=%2B15005550006&NumSegments=1&MessageSid=SM11111111111111111111111111111111&AccountSid=AC00000000000000000000000000000000&From=%2B14155551234&ApiVersion=2010-04-01"),
			"RB6XpL756xdIskINhuMqTmdjjjQ="},
		{"TW WhatsApp", "https://example.com/twilio/whatsapp", form(t,
			"SmsMessageSid=SM22222222222222222222222222222222&NumMedia=0&ProfileName=Jane&MessageType=text&SmsSid=SM22222222222222222222222222222222&WaId=14155551234&SmsStatus=received&Body=hi&To=whatsapp%3A%2B14155238886&NumSegments=1&MessageSid=SM22222222222222222222222222222222&AccountSid=AC00000000000000000000000000000000&From=whatsapp%3A%2B14155551234&ApiVersion=2010-04-01"),
			"i4L+ljXh44nZAmShLLN+LAIlH8M="},
		{"TG voice Gather action", "https://example.com/twilio/voice/gather?turn=1", form(t, gatherBody), "UWk5Q+ZWFRxo1caZQcbeoXoPsE4="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Signature(token, tt.url, tt.params); got != tt.want {
				t.Errorf("Signature = %s, want %s", got, tt.want)
			}
			if !ValidSignature(token, tt.url, tt.params, tt.want) {
				t.Error("ValidSignature refuses the published signature")
			}
			if ValidSignature("54321", tt.url, tt.params, tt.want) {
				t.Error("ValidSignature accepts the signature under another token")
			}
		})
	}
}

const gatherBody = "AccountSid=AC00000000000000000000000000000000&ApiVersion=2010-04-01&CallSid=CA33333333333333333333333333333333&CallStatus=in-progress&Confidence=0.9137&Direction=inbound&From=%2B14155551234&Language=en-US&SpeechResult=What+are+your+opening+hours%3F&To=%2B15005550006"

func form(t testing.TB, body string) url.Values {
	v, err := url.ParseQuery(body)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSignaturePortQuirk: Twilio may or may not include the port in what it
// signs; the SDKs accept both, and so does ValidSignature.
func TestSignaturePortQuirk(t *testing.T) {
	tests := []struct {
		url, sig string
		want     bool
	}{
		{"https://mycompany.com:1234/myapp.php?foo=1&bar=2", "RSOYDt4T1cUTdK1PDd93/VVr8B8=", true}, // signed without the port
		{"https://mycompany.com/myapp.php?foo=1&bar=2", "kvajT1Ptam85bY51eRf/AJRuM3w=", true},      // signed with :443
		{"http://mycompany.com/myapp.php?foo=1&bar=2", "0ZXoZLH/DfblKGATFgpif+LLRf4=", true},       // signed with :80
		{"http://mycompany.com:1234/myapp.php?foo=1&bar=2", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=", true},
		{"https://mycompany.com/myapp.php?foo=1&bar=2", "WRONG SIGNATURE", false},
		{"https://mycompany.com/myapp.php?foo=1&bar=3", "RSOYDt4T1cUTdK1PDd93/VVr8B8=", false}, // other query
		{"https://mycompany.com/myapp.php?foo=1&bar=2", "", false},
	}
	for _, tt := range tests {
		if got := ValidSignature(token, tt.url, sdkParams, tt.sig); got != tt.want {
			t.Errorf("ValidSignature(%s, %s) = %v, want %v", tt.url, tt.sig, got, tt.want)
		}
	}
	if ValidSignature("", "https://mycompany.com/myapp.php?foo=1&bar=2", sdkParams, Signature("", "https://mycompany.com/myapp.php?foo=1&bar=2", sdkParams)) {
		t.Error("an empty auth token must never validate")
	}
	tampered := url.Values{}
	for k, v := range sdkParams {
		tampered[k] = v
	}
	tampered.Set("Digits", "9999")
	if ValidSignature(token, "https://mycompany.com/myapp.php?foo=1&bar=2", tampered, "RSOYDt4T1cUTdK1PDd93/VVr8B8=") {
		t.Error("a changed parameter still validates")
	}
	extra := url.Values{"Extra": {"x"}}
	for k, v := range sdkParams {
		extra[k] = v
	}
	if ValidSignature(token, "https://mycompany.com/myapp.php?foo=1&bar=2", extra, "RSOYDt4T1cUTdK1PDd93/VVr8B8=") {
		t.Error("an added parameter still validates")
	}
}

// TestBodySignatureVectors: JSON bodies are signed through bodySHA256 (T5-T7).
func TestBodySignatureVectors(t *testing.T) {
	body := []byte(`{"property": "value", "boolean": true}`)
	const sum = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
	tests := []struct {
		url, sig string
	}{
		{"https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=" + sum, "a9nBmqA0ju/hNViExpshrM61xv4="},
		{"https://mycompany.com/myapp.php?bodySHA256=" + sum, "y77kIzt2vzLz71DgmJGsen2scGs="},
	}
	for _, tt := range tests {
		if !ValidBodySignature(token, tt.url, body, tt.sig) {
			t.Errorf("ValidBodySignature(%s) refuses the published signature", tt.url)
		}
		if ValidBodySignature(token, tt.url, []byte(`{"property": "other"}`), tt.sig) {
			t.Errorf("ValidBodySignature(%s) accepts another body", tt.url)
		}
	}
	if ValidBodySignature(token, "https://mycompany.com/myapp.php", body, Signature(token, "https://mycompany.com/myapp.php", nil)) {
		t.Error("a URL without bodySHA256 must not validate a body")
	}
}

// TestSignatureAgreesWithTwilioSDK checks Signature against Twilio's own Go
// request validator, as an independent implementation.
func TestSignatureAgreesWithTwilioSDK(t *testing.T) {
	v := twclient.NewRequestValidator(token)
	urls := []string{
		"https://mycompany.com/myapp.php?foo=1&bar=2",
		"https://example.com/hooks/pizzabot/twilio-voice?turn=3",
		"http://localhost:8080/hooks/b/twilio-voice",
	}
	params := []url.Values{sdkParams, form(t, gatherBody), {"SpeechResult": {"große Pizza, bitte & danke"}, "CallSid": {"CA1"}}}
	for _, u := range urls {
		for _, p := range params {
			flat := make(map[string]string, len(p))
			for k := range p {
				flat[k] = p.Get(k)
			}
			if !v.Validate(u, flat, Signature(token, u, p)) {
				t.Errorf("twilio-go refuses our signature for %s %v", u, flat)
			}
		}
	}
}

func FuzzSignature(f *testing.F) {
	f.Add("https://mycompany.com/myapp.php?foo=1&bar=2", gatherBody, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
	f.Add("http://[::1]:80/x", "a=1&a=2", "")
	f.Fuzz(func(t *testing.T, rawURL, body, sig string) {
		params, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		good := Signature(token, rawURL, params)
		if !ValidSignature(token, rawURL, params, good) {
			t.Fatalf("own signature refused for %q %q", rawURL, body)
		}
		if sig != good {
			ValidSignature(token, rawURL, params, sig)
		}
	})
}
