package oauthclient_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/internal/testkit"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"golang.org/x/oauth2"
)

// apiServer is the recording test API of internal/testkit.
type apiServer = testkit.APIServer

func newAPIServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *apiServer {
	return testkit.NewAPIServer(t, h)
}

func apiClient(t *testing.T, src oauth2.TokenSource, s *apiServer) *http.Client {
	t.Helper()
	c, err := oauthclient.NewAPIClient(src, oauthclient.APIConfig{
		AllowedOrigins: []string{s.URL},
		HTTP:           oauthclient.HTTPConfig{RootCAs: s.Pool(), Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
func okHandler(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }
