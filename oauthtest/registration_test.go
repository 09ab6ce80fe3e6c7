package oauthtest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestRegistrationEndpoint: the metadata advertises registration and
// metadata documents; a registration answers 201 with a client id (and a
// secret only for a secret method); bad metadata is refused with the RFC
// 7591 error codes; ForgetRegistrations drops the clients.
func TestRegistrationEndpoint(t *testing.T) {
	s := start(t, Options{})
	c := s.HTTPClient()
	resp, err := c.Get(s.Issuer + rfc8414Path)
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if md["registration_endpoint"] != s.RegistrationURL() || md["client_id_metadata_document_supported"] != true {
		t.Fatalf("metadata: registration_endpoint %v, client_id_metadata_document_supported %v", md["registration_endpoint"], md["client_id_metadata_document_supported"])
	}
	register := func(body string) (int, map[string]any) {
		t.Helper()
		resp, err := c.Post(s.RegistrationURL(), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	for body, want := range map[string]string{
		`{"redirect_uris":["http://127.0.0.1/callback"],"token_endpoint_auth_method":"none","application_type":"native"}`: "",
		`{"redirect_uris":["https://app.example/cb"]}`:                                                                    "secret",
		`{"redirect_uris":["http://app.example/cb"]}`:                                                                     "invalid_redirect_uri",
		`{"redirect_uris":[]}`: "invalid_redirect_uri",
		`{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`: "invalid_client_metadata",
		`{"redirect_uris":["https://app.example/cb"],"grant_types":["password"]}`:                     "invalid_client_metadata",
		`not json`: "invalid_client_metadata",
	} {
		status, out := register(body)
		switch want {
		case "", "secret":
			_, hasSecret := out["client_secret"]
			if status != http.StatusCreated || out["client_id"] == "" || hasSecret != (want == "secret") {
				t.Errorf("%s: %d %v", body, status, out)
			}
		default:
			if status != http.StatusBadRequest || out["error"] != want {
				t.Errorf("%s: %d %v, want %s", body, status, out, want)
			}
		}
	}
	if s.Registrations() != 2 {
		t.Fatalf("%d registrations, want 2", s.Registrations())
	}
	s.ForgetRegistrations()
	if s.Registrations() != 0 {
		t.Fatal("ForgetRegistrations kept clients")
	}
}
