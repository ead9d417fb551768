package wasmimage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	wasmimage "github.com/wasm-image/wasm-image/go"
)

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func newClient(t testing.TB, opts ...wasmimage.Option) *wasmimage.Client {
	t.Helper()
	client, err := wasmimage.NewClient(opts...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// testbedClient trusts the test bed's CA and allows plain HTTP to its plain registries;
// it reads no config files of the machine it runs on.
func testbedClient(t testing.TB, tb *testbed, opts ...wasmimage.Option) *wasmimage.Client {
	base := []wasmimage.Option{
		wasmimage.WithConfigFiles(false),
		wasmimage.WithInsecure(tb.insecure()...),
		wasmimage.WithCACertificatesFile(tb.TLS.CACert),
	}
	return newClient(t, append(base, opts...)...)
}

func TestBothVariantsWrittenAndRead(t *testing.T) {
	tb := needTestbed(t)
	module := tb.fixtureModule(t)
	client := testbedClient(t, tb)
	ctx := context.Background()
	dir := t.TempDir()

	for _, variant := range []string{"oci", "compat"} {
		t.Run(variant, func(t *testing.T) {
			img, err := wasmimage.Build(module,
				wasmimage.WithVariant(variant),
				wasmimage.WithRootIDs("add_header_root_id"),
				wasmimage.WithAnnotations(map[string]string{"org.example.team": "edge"}))
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			defer img.Close()
			if img.Variant != variant || img.ModuleDigest != sha256Digest(module) || !bytes.Equal(img.Module, module) {
				t.Fatalf("built image: variant %q digest %s", img.Variant, img.ModuleDigest)
			}
			if img.ManifestDigest != sha256Digest(img.Manifest) {
				t.Fatalf("manifest digest %s is not the SHA-256 of the manifest", img.ManifestDigest)
			}
			repo := uniqueRepo("variant-" + variant)
			for _, location := range []string{
				tb.Plain.Host + "/" + repo + ":v1",
				"oci:" + filepath.Join(dir, variant) + ":v1",
				"oci-archive:" + filepath.Join(dir, variant+".tar") + ":v1",
			} {
				digest, err := client.Push(ctx, img, location)
				if err != nil {
					t.Fatalf("Push %s: %v", location, err)
				}
				if digest != img.ManifestDigest {
					t.Fatalf("Push %s gave %s, built %s", location, digest, img.ManifestDigest)
				}
				pulled, err := client.Pull(ctx, location)
				if err != nil {
					t.Fatalf("Pull %s: %v", location, err)
				}
				if !bytes.Equal(pulled.Module, module) || pulled.Variant != variant ||
					pulled.ManifestDigest != digest || pulled.ModuleSize != int64(len(module)) ||
					pulled.IndexDigest != "" || !bytes.Equal(pulled.Manifest, img.Manifest) {
					t.Fatalf("Pull %s: variant %q manifest %s index %q size %d", location,
						pulled.Variant, pulled.ManifestDigest, pulled.IndexDigest, pulled.ModuleSize)
				}
				rc := pulled.RuntimeConfig
				if rc == nil || rc.Type != "envoy_proxy" || fmt.Sprint(rc.RootIDs) != "[add_header_root_id]" ||
					fmt.Sprint(rc.ABIVersions) != "[v0.2.1]" || !json.Valid(rc.Raw) {
					t.Fatalf("Pull %s: runtime config %+v", location, rc)
				}
				if pulled.Annotations["org.example.team"] != "edge" {
					t.Fatalf("Pull %s: annotations %v", location, pulled.Annotations)
				}
				facts, err := pulled.Facts()
				if err != nil || facts.Kind != "core-module" || fmt.Sprint(facts.ProxyABIVersions) != "[v0.2.1]" {
					t.Fatalf("Facts: %+v, %v", facts, err)
				}
				pulled.Close()
			}
		})
	}
}

func TestEveryStore(t *testing.T) {
	tb := needTestbed(t)
	client := testbedClient(t, tb)
	ctx := context.Background()
	fx := tb.Fixtures
	cases := map[string]string{
		"registry (OCI manifest)":    fx.BuildahOCI,
		"registry (Docker manifest)": fx.BuildahDocker,
		"registry, two layers":       fx.Multilayer,
		"oci: layout":                fx.OCILayout,
		"oci-archive:":               fx.OCIArchive,
		"docker-archive:":            fx.DockerArchive,
		"docker:// form":             "docker://" + fx.BuildahOCI,
	}
	for name, location := range cases {
		t.Run(name, func(t *testing.T) {
			img, err := client.Pull(ctx, location)
			if err != nil {
				t.Fatalf("Pull %s: %v", location, err)
			}
			defer img.Close()
			if img.ModuleDigest != fx.ModuleSHA256 || sha256Digest(img.Module) != fx.ModuleSHA256 {
				t.Fatalf("Pull %s: module %s, want %s", location, img.ModuleDigest, fx.ModuleSHA256)
			}

			out := filepath.Join(t.TempDir(), "plugin.wasm")
			fileImg, err := client.PullToFile(ctx, location, out)
			if err != nil {
				t.Fatalf("PullToFile %s: %v", location, err)
			}
			written, _ := os.ReadFile(out)
			if sha256Digest(written) != fx.ModuleSHA256 || fileImg.Module != nil ||
				fileImg.ModuleSize != fx.ModuleSize || fileImg.ManifestDigest != img.ManifestDigest {
				t.Fatalf("PullToFile %s: file %s, image %+v", location, sha256Digest(written), fileImg)
			}
			if _, err := client.Push(ctx, fileImg, "oci:"+t.TempDir()+":x"); !errors.Is(err, wasmimage.ErrInvalidArgument) {
				t.Fatalf("pushing an image from PullToFile: %v, want ErrInvalidArgument", err)
			}
		})
	}

	t.Run("platform for one call", func(t *testing.T) {
		// A lone manifest is taken whatever the platform asked for; a malformed platform
		// is refused before anything is fetched.
		img, err := client.Pull(ctx, fx.BuildahOCI, wasmimage.WithPlatform("linux/amd64"))
		if err != nil || img.ModuleDigest != fx.ModuleSHA256 {
			t.Fatalf("Pull with a platform: %v", err)
		}
		if _, err := client.Pull(ctx, fx.BuildahOCI, wasmimage.WithPlatform("not a platform")); !errors.Is(err, wasmimage.ErrInvalidArgument) {
			t.Fatalf("malformed platform: %v, want ErrInvalidArgument", err)
		}
	})

	t.Run("copy and resolve keep digests", func(t *testing.T) {
		dst := tb.Plain.Host + "/" + uniqueRepo("copy") + ":v1"
		digest, err := client.Copy(ctx, fx.OCILayout, dst)
		if err != nil {
			t.Fatalf("Copy: %v", err)
		}
		if digest != fx.Digests["buildah-oci"] {
			t.Fatalf("Copy gave %s, want %s", digest, fx.Digests["buildah-oci"])
		}
		for _, location := range []string{dst, fx.OCILayout, fx.BuildahOCI} {
			desc, err := client.Resolve(ctx, location)
			if err != nil {
				t.Fatalf("Resolve %s: %v", location, err)
			}
			if desc.Digest != digest || desc.Size <= 0 || desc.MediaType != "application/vnd.oci.image.manifest.v1+json" {
				t.Fatalf("Resolve %s: %+v", location, desc)
			}
		}
	})

	t.Run("through a mirror", func(t *testing.T) {
		// A registry nothing listens on (the discard port): only the mirror can answer.
		const nowhere = "127.0.0.1:9"
		mirrored := newClient(t, wasmimage.WithConfigFiles(false),
			wasmimage.WithInsecure(append(tb.insecure(), nowhere)...),
			wasmimage.WithRetries(0),
			wasmimage.WithMirror(nowhere, tb.Mirror.Host))
		img, err := mirrored.Pull(ctx, nowhere+"/fixtures/buildah-oci:latest")
		if err != nil {
			t.Fatalf("Pull through the mirror: %v", err)
		}
		if img.ModuleDigest != fx.ModuleSHA256 {
			t.Fatalf("mirror gave module %s", img.ModuleDigest)
		}
	})
}

func TestAuthentication(t *testing.T) {
	tb := needTestbed(t)
	ctx := context.Background()
	fx := tb.Fixtures

	t.Run("basic", func(t *testing.T) {
		client := testbedClient(t, tb, wasmimage.WithBasicAuth(tb.Basic.Host, tb.Basic.Username, tb.Basic.Password))
		img, err := client.Pull(ctx, fx.Basic)
		if err != nil || img.ModuleDigest != fx.ModuleSHA256 {
			t.Fatalf("Pull with basic auth: %v", err)
		}
	})
	t.Run("basic, anonymous", func(t *testing.T) {
		_, err := testbedClient(t, tb).Pull(ctx, fx.Basic)
		if !errors.Is(err, wasmimage.ErrUnauthorized) {
			t.Fatalf("anonymous pull: %v, want ErrUnauthorized", err)
		}
	})
	t.Run("basic, wrong password", func(t *testing.T) {
		secret := "not-" + tb.Basic.Password
		client := testbedClient(t, tb, wasmimage.WithBasicAuth(tb.Basic.Host, tb.Basic.Username, secret))
		_, err := client.Pull(ctx, fx.Basic)
		var e *wasmimage.Error
		if !errors.Is(err, wasmimage.ErrUnauthorized) || !errors.As(err, &e) || e.HTTPStatus != 401 {
			t.Fatalf("wrong password: %v, want ErrUnauthorized with HTTP 401", err)
		}
		if bytes.Contains([]byte(err.Error()), []byte(secret)) {
			t.Fatalf("the message shows the password: %v", err)
		}
	})
	t.Run("pull secret bytes", func(t *testing.T) {
		auth := base64.StdEncoding.EncodeToString([]byte(tb.Basic.Username + ":" + tb.Basic.Password))
		secret := []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, tb.Basic.Host, auth))
		client := testbedClient(t, tb, wasmimage.WithDockerConfigJSON(secret))
		img, err := client.Pull(ctx, fx.Basic)
		if err != nil || img.ModuleDigest != fx.ModuleSHA256 {
			t.Fatalf("Pull with a pull secret: %v", err)
		}
	})
	t.Run("malformed pull secret", func(t *testing.T) {
		// The library may check the bytes when the client is made or when credentials
		// are first looked up; either way the kind is INVALID_ARGUMENT.
		client, err := wasmimage.NewClient(wasmimage.WithConfigFiles(false),
			wasmimage.WithInsecure(tb.insecure()...),
			wasmimage.WithDockerConfigJSON([]byte(`{"auths": [`)))
		if err == nil {
			defer client.Close()
			_, err = client.Pull(ctx, fx.Basic)
		}
		if !errors.Is(err, wasmimage.ErrInvalidArgument) {
			t.Fatalf("malformed pull secret: %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("token", func(t *testing.T) {
		client := testbedClient(t, tb, wasmimage.WithBasicAuth(tb.Token.Host, tb.Token.Username, tb.Token.Password))
		img, err := client.Pull(ctx, fx.TokenPrivate)
		if err != nil || img.ModuleDigest != fx.ModuleSHA256 {
			t.Fatalf("Pull with token auth: %v", err)
		}
		dst := tb.Token.Host + "/private/" + uniqueRepo("token") + ":v1"
		if _, err := client.Push(ctx, img, dst); err != nil {
			t.Fatalf("Push with token auth: %v", err)
		}
	})
	t.Run("token, anonymous", func(t *testing.T) {
		client := testbedClient(t, tb)
		if img, err := client.Pull(ctx, fx.TokenPublic); err != nil || img.ModuleDigest != fx.ModuleSHA256 {
			t.Fatalf("anonymous pull of a public repository: %v", err)
		}
		if _, err := client.Pull(ctx, fx.TokenPrivate); !errors.Is(err, wasmimage.ErrUnauthorized) {
			t.Fatalf("anonymous pull of a private repository: %v, want ErrUnauthorized", err)
		}
	})
}

func TestTLS(t *testing.T) {
	tb := needTestbed(t)
	ctx := context.Background()
	pem, err := os.ReadFile(tb.TLS.CACert)
	if err != nil {
		t.Fatal(err)
	}
	for name, opt := range map[string]wasmimage.Option{
		"CA file":  wasmimage.WithCACertificatesFile(tb.TLS.CACert),
		"CA bytes": wasmimage.WithCACertificates(pem),
	} {
		t.Run(name, func(t *testing.T) {
			client := newClient(t, wasmimage.WithConfigFiles(false), opt)
			img, err := client.Pull(ctx, tb.Fixtures.TLS)
			if err != nil || img.ModuleDigest != tb.Fixtures.ModuleSHA256 {
				t.Fatalf("Pull over TLS: %v", err)
			}
		})
	}
	t.Run("unknown CA", func(t *testing.T) {
		client := newClient(t, wasmimage.WithConfigFiles(false), wasmimage.WithRetries(0))
		if _, err := client.Pull(ctx, tb.Fixtures.TLS); !errors.Is(err, wasmimage.ErrNetwork) {
			t.Fatalf("Pull with an untrusted certificate: %v, want ErrNetwork", err)
		}
	})
	t.Run("malformed CA", func(t *testing.T) {
		_, err := wasmimage.NewClient(wasmimage.WithCACertificates([]byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")))
		if !errors.Is(err, wasmimage.ErrInvalidArgument) {
			t.Fatalf("malformed CA: %v, want ErrInvalidArgument", err)
		}
	})
}

func TestErrorsFromRealCauses(t *testing.T) {
	tb := needTestbed(t)
	ctx := context.Background()
	client := testbedClient(t, tb)

	t.Run("missing tag", func(t *testing.T) {
		_, err := client.Pull(ctx, tb.Plain.Host+"/fixtures/buildah-oci:no-such-tag")
		var e *wasmimage.Error
		if !errors.Is(err, wasmimage.ErrNotFound) || !errors.As(err, &e) {
			t.Fatalf("missing tag: %v, want ErrNotFound", err)
		}
		if e.Kind != wasmimage.KindNotFound || e.HTTPStatus != 404 || e.RegistryCode != "MANIFEST_UNKNOWN" || e.Message == "" {
			t.Fatalf("missing tag: %#v", e)
		}
		if errors.Is(err, wasmimage.ErrUnauthorized) || errors.Is(err, context.Canceled) {
			t.Fatalf("missing tag matches another kind: %v", err)
		}
	})
	t.Run("tampered blob", func(t *testing.T) {
		dir := t.TempDir()
		img, err := wasmimage.Build(tb.fixtureModule(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Push(ctx, img, "oci:"+dir+":v1"); err != nil {
			t.Fatal(err)
		}
		// Flip one byte of the module blob: same size, other content.
		blob := filepath.Join(dir, "blobs", "sha256", img.ModuleDigest[len("sha256:"):])
		data, err := os.ReadFile(blob)
		if err != nil {
			t.Fatalf("the module blob: %v", err)
		}
		data[len(data)-1] ^= 0xff
		if err := os.WriteFile(blob, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "plugin.wasm")
		if _, err := client.PullToFile(ctx, "oci:"+dir+":v1", out); !errors.Is(err, wasmimage.ErrDigestMismatch) {
			t.Fatalf("tampered blob: %v, want ErrDigestMismatch", err)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a failed pull left %s behind", out)
		}
	})
	t.Run("rate limited", func(t *testing.T) {
		repo := uniqueRepo("rate")
		tb.addFault(t, map[string]any{"match": repo + "/manifests", "action": "status", "status": 429, "retry_after": 7, "times": -1})
		noRetries := testbedClient(t, tb, wasmimage.WithRetries(0))
		// A GET: its answer has the registry's JSON error body (a HEAD's has none).
		_, err := noRetries.Pull(ctx, tb.Faulty.Host+"/"+repo+":v1")
		var e *wasmimage.Error
		if !errors.Is(err, wasmimage.ErrRateLimited) || !errors.As(err, &e) {
			t.Fatalf("429: %v, want ErrRateLimited", err)
		}
		if e.HTTPStatus != 429 || e.RetryAfter != 7*time.Second || e.RegistryCode != "TOOMANYREQUESTS" {
			t.Fatalf("429: status %d, retry after %v, code %q", e.HTTPStatus, e.RetryAfter, e.RegistryCode)
		}
	})
	t.Run("limit", func(t *testing.T) {
		small := testbedClient(t, tb, wasmimage.WithLimits(wasmimage.Limits{MaxModuleBytes: 64}))
		_, err := small.Pull(ctx, tb.Fixtures.BuildahOCI)
		if !errors.Is(err, wasmimage.ErrLimitExceeded) {
			t.Fatalf("module over the limit: %v, want ErrLimitExceeded", err)
		}
	})
	t.Run("bad location", func(t *testing.T) {
		if _, err := client.Resolve(ctx, "oci:"); !errors.Is(err, wasmimage.ErrInvalidReference) {
			t.Fatalf("bad location: %v, want ErrInvalidReference", err)
		}
		if _, err := client.Pull(ctx, "oci:/tmp/a\x00b"); !errors.Is(err, wasmimage.ErrInvalidArgument) {
			t.Fatalf("NUL in a location: %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("output is a directory", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := client.PullToFile(ctx, tb.Fixtures.OCILayout, dir); !errors.Is(err, wasmimage.ErrInvalidArgument) {
			t.Fatalf("PullToFile onto a directory: %v, want ErrInvalidArgument", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("a failed pull left %d files in the directory", len(entries))
		}
	})
	t.Run("not Wasm", func(t *testing.T) {
		if _, err := wasmimage.Build([]byte("not wasm")); !errors.Is(err, wasmimage.ErrInvalidFormat) {
			t.Fatalf("Build of non-Wasm bytes: %v, want ErrInvalidFormat", err)
		}
		if _, err := wasmimage.Build(nil); !errors.Is(err, wasmimage.ErrInvalidFormat) {
			t.Fatalf("Build of no bytes: %v, want ErrInvalidFormat", err)
		}
		if _, err := wasmimage.ModuleFacts([]byte{0, 'a', 's', 'm'}); !errors.Is(err, wasmimage.ErrInvalidFormat) {
			t.Fatalf("ModuleFacts of a cut header: %v, want ErrInvalidFormat", err)
		}
	})
	t.Run("bad options", func(t *testing.T) {
		if _, err := wasmimage.Build(tb.fixtureModule(t), wasmimage.WithVariant("wasm-artifact")); !errors.Is(err, wasmimage.ErrInvalidArgument) {
			t.Fatalf("unwritable variant: %v, want ErrInvalidArgument", err)
		}
		if _, err := wasmimage.NewClient(wasmimage.WithPlatform("not a platform")); !errors.Is(err, wasmimage.ErrInvalidArgument) {
			t.Fatalf("malformed platform: %v, want ErrInvalidArgument", err)
		}
		if _, err := wasmimage.NewClient(wasmimage.WithReadTimeout(-1)); !errors.Is(err, wasmimage.ErrInvalidArgument) {
			t.Fatalf("negative timeout: %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("closed client", func(t *testing.T) {
		closed, err := wasmimage.NewClient()
		if err != nil {
			t.Fatal(err)
		}
		closed.Close()
		closed.Close()
		if _, err := closed.Resolve(ctx, tb.Fixtures.OCILayout); !errors.Is(err, wasmimage.ErrInvalidArgument) {
			t.Fatalf("call on a closed client: %v, want ErrInvalidArgument", err)
		}
	})
}

func TestManyGoroutinesShareOneClient(t *testing.T) {
	tb := needTestbed(t)
	client := testbedClient(t, tb)
	const goroutines = 100
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			location := tb.Fixtures.BuildahOCI
			if i%2 == 1 {
				location = tb.Fixtures.BuildahDocker
			}
			img, err := client.Pull(context.Background(), location)
			if err != nil {
				errs <- err
				return
			}
			defer img.Close()
			if sha256Digest(img.Module) != tb.Fixtures.ModuleSHA256 {
				errs <- fmt.Errorf("goroutine %d: module %s", i, sha256Digest(img.Module))
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
