package voice

import (
	"errors"
	"strings"
	"testing"
)

func TestEscapeText(t *testing.T) {
	got := EscapeText(`Fish & "chips" <now> it's` + "\x01")
	want := "Fish &amp; &quot;chips&quot; &lt;now&gt; it&apos;s "
	if got != want {
		t.Errorf("EscapeText = %q, want %q", got, want)
	}
	if err := ValidateSSML(TextToSSML(`<speak>&amp; ]]> <!-- x -->`)); err != nil {
		t.Errorf("escaped text is not valid SSML: %v", err)
	}
}

func TestValidateSSML(t *testing.T) {
	valid := []string{
		`<speak>Hello</speak>`,
		`<?xml version="1.0"?><speak>Hello</speak>`,
		`<speak/>`,
		`<speak version="1.1" xmlns="http://www.w3.org/2001/10/synthesis">Hi <break time="1s"/> there</speak>`,
		`<speak><p><s>One.</s><s>Two.</s></p></speak>`,
		`<speak><say-as interpret-as="digits">123</say-as> <sub alias="World Wide Web">WWW</sub></speak>`,
		`<speak><amazon:effect name="whispered">psst</amazon:effect> <prosody rate="slow">slow</prosody></speak>`,
		`<speak><emphasis level="strong">now</emphasis> <phoneme alphabet="ipa" ph="pɪˈkɑːn">pecan</phoneme></speak>`,
		`<speak><audio src="https://example.com/a.mp3"/><lang xml:lang="fr-FR">bonjour</lang></speak>`,
		`<speak><!-- a comment --> &amp; &lt; &gt; &quot; &apos; &#233;</speak>`,
	}
	for _, doc := range valid {
		if err := ValidateSSML(doc); err != nil {
			t.Errorf("ValidateSSML(%s) = %v, want valid", doc, err)
		}
	}
	invalid := map[string]string{
		"not XML":             `Hello`,
		"wrong root":          `<p>Hello</p>`,
		"unclosed":            `<speak>Hello`,
		"mismatched":          `<speak><p>Hello</s></speak>`,
		"unknown element":     `<speak><script>x</script></speak>`,
		"html":                `<speak><b>bold</b></speak>`,
		"two roots":           `<speak>a</speak><speak>b</speak>`,
		"text after root":     `<speak>a</speak> b`,
		"nested speak":        `<speak><speak>a</speak></speak>`,
		"doctype":             `<!DOCTYPE speak [<!ENTITY x "y">]><speak>&x;</speak>`,
		"unknown entity":      `<speak>&nbsp;</speak>`,
		"bare ampersand":      `<speak>fish & chips</speak>`,
		"processing":          `<speak><?php echo 1 ?></speak>`,
		"too long":            `<speak>` + strings.Repeat("a", MaxSSMLBytes) + `</speak>`,
		"bad UTF-8":           "<speak>\xff</speak>",
		"unknown prefix elem": `<speak><google:x/></speak>`,
		"too deep":            `<speak>` + strings.Repeat("<p>", 20) + strings.Repeat("</p>", 20) + `</speak>`,
		"empty":               ``,
	}
	for name, doc := range invalid {
		err := ValidateSSML(doc)
		var se *InvalidSSMLError
		if !errors.As(err, &se) {
			t.Errorf("%s: ValidateSSML(%q) = %v, want an *InvalidSSMLError", name, doc, err)
		}
	}
}

func TestFromSSML(t *testing.T) {
	sp, err := FromSSML(`Hello <break time="500ms"/> <emphasis>world</emphasis>`)
	if err != nil {
		t.Fatal(err)
	}
	if sp.SSML != `<speak>Hello <break time="500ms"/> <emphasis>world</emphasis></speak>` || sp.Text != "Hello world" {
		t.Errorf("FromSSML fragment = %+v", sp)
	}
	if _, err := FromSSML(`<speak>unclosed`); err == nil {
		t.Error("FromSSML accepted invalid SSML")
	}
}

func TestInner(t *testing.T) {
	tests := map[string]string{
		`<speak>Hi <break/> there</speak>`:                    `Hi <break/> there`,
		`<?xml version="1.0"?><speak version="1.1">x</speak>`: `x`,
		`<speak/>`:        ``,
		`<speak></speak>`: ``,
	}
	for in, want := range tests {
		if got := Inner(in); got != want {
			t.Errorf("Inner(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := Truncate("one two three", 9); got != "one two" {
		t.Errorf("Truncate = %q", got)
	}
	if got := Truncate("ééééé", 3); got != "é" {
		t.Errorf("Truncate splits a rune: %q", got)
	}
	long := strings.Repeat("& ", MaxSSMLBytes)
	if sp := FromText(long); len(sp.SSML) > MaxSSMLBytes || ValidateSSML(sp.SSML) != nil {
		t.Errorf("FromText of a long text: %d bytes, valid: %v", len(sp.SSML), ValidateSSML(sp.SSML))
	}
}

func FuzzValidateSSML(f *testing.F) {
	for _, s := range []string{`<speak>Hello</speak>`, `<speak><p>x</p></speak>`, `<speak>&amp;</speak>`, `<a>`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		sp, err := FromSSML(doc)
		if err != nil || sp.IsZero() {
			return
		}
		// Whatever is accepted is a valid document, and its text escapes to one.
		if err := ValidateSSML(sp.SSML); err != nil {
			t.Fatalf("FromSSML(%q) produced invalid %q: %v", doc, sp.SSML, err)
		}
		if err := ValidateSSML(TextToSSML(sp.Text)); err != nil && len(TextToSSML(sp.Text)) <= MaxSSMLBytes {
			t.Fatalf("text %q of %q does not escape to valid SSML: %v", sp.Text, doc, err)
		}
	})
}
