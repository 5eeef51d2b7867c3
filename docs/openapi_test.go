package docs

import (
	"encoding/json"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// TestOpenAPIValid checks openapi.yaml with libopenapi: an OpenAPI 3.1
// document that validates against the specification's schema and whose
// model builds without errors (every $ref resolves).
func TestOpenAPIValid(t *testing.T) {
	doc, err := libopenapi.NewDocument(OpenAPIYAML())
	if err != nil {
		t.Fatalf("parse openapi.yaml: %v", err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("openapi version %q, want 3.1.0", v)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("build the model: %v", err)
	}
	if model == nil || model.Model.Paths == nil || model.Model.Paths.PathItems.Len() == 0 {
		t.Fatal("the document has no paths")
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("%s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  at %s (line %d): %s", se.FieldPath, se.Line, se.Reason)
			}
		}
		t.Fatal("openapi.yaml is not a valid OpenAPI document")
	}
}

// TestOpenAPIJSON checks that the served JSON is the YAML document: the same
// version and the same paths.
func TestOpenAPIJSON(t *testing.T) {
	raw, err := OpenAPIJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	fromJSON, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	model, err := fromJSON.BuildV3Model()
	if err != nil {
		t.Fatalf("the JSON form does not build: %v", err)
	}
	if n := model.Model.Paths.PathItems.Len(); n != len(doc.Paths) || n < 30 {
		t.Errorf("%d paths in the model, %d in the JSON; want the same, at least 30", n, len(doc.Paths))
	}
	responses := doc.Paths["/v1/bots/{bot}"]["put"].(map[string]any)["responses"].(map[string]any)
	if _, ok := responses["201"]; !ok {
		t.Errorf("status codes are not kept as keys: %v", responses)
	}
}

func TestJSONValueKeys(t *testing.T) {
	got, err := jsonValue(map[any]any{200: "ok", "a": []any{map[any]any{true: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(got)
	if string(raw) != `{"200":"ok","a":[{"true":1}]}` {
		t.Errorf("got %s", raw)
	}
	if _, err := jsonValue(map[any]any{1.5: "x"}); err == nil {
		t.Error("a float key was accepted")
	}
}
