package resourceclient_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/oauthtest/demoapi"
	"github.com/oauthsafe/oauthsafe/resourceclient"
)

// TestClientMetadataDocument: a server that accepts Client ID Metadata
// Documents gets the document's URL as the client id (no registration),
// fetches the document, and the login works; a document that names
// another client id is refused by the server, and nothing is registered.
func TestClientMetadataDocument(t *testing.T) {
	as := startAS(t)
	log := watch(as)
	host := newResourceHost(t, as)
	resource := host.add(t, as, "/mcp", demoapi.ResourceConfig{ChallengeScope: []string{oauthtest.ScopeAPIRead}})

	var docURL string
	docs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := docURL
		if r.URL.Path == "/wrong.json" {
			id = "https://elsewhere.example/client.json"
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"client_id": id, "client_name": "test agent", "redirect_uris": []string{redirect},
			"token_endpoint_auth_method": "none", "application_type": "native",
		})
	}))
	as.StartTLS(docs)
	t.Cleanup(docs.Close)
	docURL = docs.URL + "/client.json"

	cfg := config(as, resource, nil)
	cfg.ClientIDMetadataURL = docURL
	rc, err := resourceclient.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := get(t, rc.HTTPClient(), resource+"/read"); err != nil || code != http.StatusOK {
		t.Fatalf("GET: %d, %v", code, err)
	}
	if as.Count("/register") != 0 {
		t.Fatal("registered although the server accepts metadata documents")
	}
	if auths := log.authorizations(); len(auths) != 1 || auths[0].Get("client_id") != docURL {
		t.Fatalf("authorization client_id: want the document URL %q", docURL)
	}

	cfg.ClientIDMetadataURL = docs.URL + "/wrong.json"
	rc, err = resourceclient.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, rc.HTTPClient(), resource+"/read"); err == nil {
		t.Fatal("a document naming another client id was accepted")
	}
	if as.Count("/register") != 0 {
		t.Fatal("registered")
	}
}
