package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/oauthsafe/oauthsafe/oauthtest"
)

// TestGitCredentialChecksHost: the git credential helper answers with the
// token only for the protocol, host and path of the profile's API origins
// (its --resource URLs and the helper's --allow URLs), and for anything
// else answers nothing, exits 0 (git goes on with its other helpers) and
// says why on stderr. With the helper configured for every host (not
// URL-scoped in git's configuration), real git gets no token for another
// host.
func TestGitCredentialChecksHost(t *testing.T) {
	c := newCLI(t, oauthtest.Options{})
	mustLogin(t, c, "--resource", "https://git.example.com/")
	allow := []string{"--allow", "https://code.example.org/team"}
	for _, tc := range []struct {
		name, in string
		extra    []string
		answer   bool
		why      string
	}{
		{"profile resource", "protocol=https\nhost=git.example.com\n", nil, true, ""},
		{"host in other case", "protocol=https\nhost=GIT.example.com\n", nil, true, ""},
		{"another host", "protocol=https\nhost=attacker.example\n", nil, false, "attacker.example is not one of"},
		{"a suffix of the host", "protocol=https\nhost=evil-git.example.com\n", nil, false, "not one of"},
		{"another port", "protocol=https\nhost=git.example.com:8443\n", nil, false, "not one of"},
		{"plain http", "protocol=http\nhost=git.example.com\n", nil, false, "only ever sent over https"},
		{"allowed path", "protocol=https\nhost=code.example.org\npath=team/repo.git\n", allow, true, ""},
		{"path outside", "protocol=https\nhost=code.example.org\npath=other/repo.git\n", allow, false, "not one of"},
		{"path prefix not a segment", "protocol=https\nhost=code.example.org\npath=teamX/repo.git\n", allow, false, "not one of"},
		{"no path sent", "protocol=https\nhost=code.example.org\n", allow, false, "useHttpPath"},
	} {
		args := append(append([]string{"git-credential"}, tc.extra...), "get")
		code, stdout, stderr := c.runIn(tc.in+"\n", args...)
		if code != exitOK {
			t.Fatalf("%s: exit %d, %s", tc.name, code, stderr)
		}
		answered := strings.Contains(stdout, "password=")
		if answered != tc.answer {
			t.Fatalf("%s: answered %v (stdout %q), want %v", tc.name, answered, stdout, tc.answer)
		}
		if !tc.answer && (stdout != "" || !strings.Contains(stderr, "declined") || !strings.Contains(stderr, tc.why)) {
			t.Fatalf("%s: stdout %q stderr %q; want nothing on stdout and the reason (%q) on stderr", tc.name, stdout, stderr, tc.why)
		}
	}

	// Real git, with the helper configured for every host.
	git := c.gitRunner(t)
	if _, e, err := git("", "config", "--global", "credential.helper", "!"+c.bin+" git-credential"); err != nil {
		t.Fatal(err, e)
	}
	out, _, err := git("protocol=https\nhost=git.example.com\n\n", "credential", "fill")
	if err != nil || !strings.Contains(out, "password=") {
		t.Fatalf("git credential fill for the API origin: %v %q", err, out)
	}
	out, stderr, _ := git("protocol=https\nhost=attacker.example\n\n", "credential", "fill")
	if strings.Contains(out, "password=") {
		t.Fatalf("git got a token for attacker.example: %q", out)
	}
	if !strings.Contains(stderr, "declined") {
		t.Fatalf("git's stderr does not say why: %q", stderr)
	}
}

// gitRunner returns a runner of real git with the CLI's environment, a
// HOME of its own (for --global configuration), no system configuration
// and no prompts; extra is appended to the environment. It skips (fails in
// CI) when git is not installed.
func (c *cli) gitRunner(t *testing.T, extra ...string) func(stdin string, args ...string) (string, string, error) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("git is not installed")
		}
		t.Skip("git is not installed")
	}
	env := []string{}
	for _, kv := range c.env {
		if !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME="+t.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=/bin/false", "SSH_ASKPASS=/bin/false")
	env = append(env, extra...)
	return func(stdin string, args ...string) (string, string, error) {
		cmd := exec.Command("git", args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
}
