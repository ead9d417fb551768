package wasmimage_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// testbed is the parsed testbed.json of the shared test bed (tests/support/testbed.py):
// real registries on loopback, started by tests/run_all.sh.
type testbed struct {
	Plain struct{ Host string } `json:"plain"`
	Basic struct {
		Host     string `json:"host"`
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"basic"`
	TLS struct {
		Host   string `json:"host"`
		CACert string `json:"ca_cert"`
	} `json:"tls"`
	Token struct {
		Host     string `json:"host"`
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"token"`
	Mirror struct {
		Host     string `json:"host"`
		Upstream string `json:"upstream"`
	} `json:"mirror"`
	Faulty struct {
		Host    string `json:"host"`
		Control string `json:"control"`
		Log     string `json:"log"`
	} `json:"faulty"`
	Fixtures struct {
		Module        string            `json:"module"`
		ModuleSHA256  string            `json:"module_sha256"`
		ModuleSize    int64             `json:"module_size"`
		BuildahOCI    string            `json:"buildah-oci"`
		BuildahDocker string            `json:"buildah-docker"`
		Multilayer    string            `json:"buildah-multilayer"`
		OCILayout     string            `json:"oci-layout"`
		OCIArchive    string            `json:"oci-archive"`
		DockerArchive string            `json:"docker-archive"`
		Basic         string            `json:"basic"`
		TLS           string            `json:"tls"`
		TokenPublic   string            `json:"token-public"`
		TokenPrivate  string            `json:"token-private"`
		Digests       map[string]string `json:"digests"`
	} `json:"fixtures"`
}

// needTestbed gives the test bed, or skips the test (saying so) when none is running.
func needTestbed(t testing.TB) *testbed {
	t.Helper()
	path := os.Getenv("WASM_IMAGE_TESTBED")
	if path == "" {
		t.Skip("skipped: WASM_IMAGE_TESTBED is unset (start one with tests/support/testbed.py)")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the test bed description: %v", err)
	}
	var tb testbed
	if err := json.Unmarshal(data, &tb); err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	return &tb
}

// fixtureModule is the module every fixture image holds.
func (tb *testbed) fixtureModule(t testing.TB) []byte {
	t.Helper()
	module, err := os.ReadFile(tb.Fixtures.Module)
	if err != nil {
		t.Fatal(err)
	}
	return module
}

// insecure lists the plain-HTTP registries of the test bed.
func (tb *testbed) insecure() []string {
	return []string{tb.Plain.Host, tb.Basic.Host, tb.Token.Host, tb.Mirror.Host, tb.Faulty.Host}
}

var uniqueCounter atomic.Int64

// uniqueRepo names a repository no other test (or earlier run) uses: the fault proxy and
// the registries are shared.
func uniqueRepo(prefix string) string {
	return fmt.Sprintf("go-%s-%d-%d-%d", prefix, os.Getpid(), time.Now().UnixNano()%1_000_000_000, uniqueCounter.Add(1))
}

// addFault appends a rule to the fault proxy; the rule is removed when the test ends.
func (tb *testbed) addFault(t testing.TB, rule map[string]any) {
	t.Helper()
	body, _ := json.Marshal(rule)
	resp, err := http.Post(tb.Faulty.Control, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("adding a fault: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("adding a fault: HTTP %d", resp.StatusCode)
	}
	match, _ := rule["match"].(string)
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, tb.Faulty.Control+"?match="+match, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
}
