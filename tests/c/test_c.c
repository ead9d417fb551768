/* The C API tested from C, against OCI layouts always and against the real registries of
 * the test bed when run.sh exported their addresses (WI_PLAIN, ...). These tests are
 * also the examples of how each call is used: every error is checked and freed.
 *
 *   test_c                  run every test
 *   test_c NAME...          run the tests whose names contain one of NAME
 *   test_c --make-layout D  write the test module as oci:D/layout:plugin and D/expected.wasm
 *                           (for the example program's test)
 */
#define _GNU_SOURCE 1
#include <wasm_image.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "support.h"

/* ---------------------------------------------------------------- a tiny harness -- */

static int test_failed;
static const char *test_skipped;

#define FAIL_AT(...)                                                                              \
    do {                                                                                          \
        fprintf(stderr, "    %s:%d: ", __FILE__, __LINE__);                                       \
        fprintf(stderr, __VA_ARGS__);                                                             \
        fputc('\n', stderr);                                                                      \
        test_failed = 1;                                                                          \
    } while (0)

#define CHECK(cond)                                                                               \
    do {                                                                                          \
        if (!(cond)) FAIL_AT("check failed: %s", #cond);                                          \
    } while (0)

#define REQUIRE(cond)                                                                             \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            FAIL_AT("requirement failed: %s", #cond);                                             \
            goto out;                                                                             \
        }                                                                                         \
    } while (0)

#define CHECK_STR(a, b)                                                                           \
    do {                                                                                          \
        const char *a_ = (a), *b_ = (b);                                                          \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                    \
            FAIL_AT("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
    } while (0)

/* A call that must succeed; on failure prints the error and leaves the test. */
#define OK(call)                                                                                  \
    do {                                                                                          \
        wasm_image_error_t *e_ = (call);                                                          \
        if (e_) {                                                                                 \
            FAIL_AT("%s: %s: %s", #call, wasm_image_error_name(e_), wasm_image_error_message(e_)); \
            wasm_image_error_free(e_);                                                            \
            goto out;                                                                             \
        }                                                                                         \
    } while (0)

/* A call that must fail with `kind`. */
#define FAILS_WITH(kind, call)                                                                    \
    do {                                                                                          \
        wasm_image_error_t *e_ = (call);                                                          \
        if (wasm_image_error_kind(e_) != (kind))                                                  \
            FAIL_AT("%s: expected %s, got %s: %s", #call, wasm_image_error_kind_name(kind),       \
                    wasm_image_error_name(e_), wasm_image_error_message(e_));                     \
        wasm_image_error_free(e_);                                                                \
    } while (0)

#define SKIP_UNLESS_REGISTRY()                                                                    \
    do {                                                                                          \
        if (!wi_env("WI_PLAIN")) {                                                                \
            test_skipped = "WI_PLAIN unset: no test bed";                                         \
            return;                                                                               \
        }                                                                                         \
    } while (0)

/* ------------------------------------------------------------------------ helpers -- */

/* A client that speaks plain HTTP to the test bed's plain, basic and faulty registries. */
static wasm_image_client_t *registry_client(wasm_image_client_options_t *options) {
    wasm_image_client_t *client = NULL;
    wasm_image_error_t *err = NULL;
    int own = options == NULL;
    const char *hosts[] = {"WI_PLAIN", "WI_BASIC", "WI_FAULTY"};
    if (own) options = wasm_image_client_options_new();
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0] && !err; i++)
        if (wi_env(hosts[i])) err = wasm_image_client_options_add_insecure_registry(options, wi_env(hosts[i]));
    if (!err) err = wasm_image_client_options_set_use_config_files(options, false);
    if (!err) err = wasm_image_client_new(options, &client);
    if (err) {
        fprintf(stderr, "    client: %s: %s\n", wasm_image_error_name(err), wasm_image_error_message(err));
        wasm_image_error_free(err);
    }
    if (own) wasm_image_client_options_free(options);
    return client;
}

static wasm_image_image_t *build_module(const char *variant) {
    wasm_image_build_options_t *options = wasm_image_build_options_new();
    wasm_image_image_t *image = NULL;
    wasm_image_error_t *err = wasm_image_build_options_set_variant(options, variant);
    if (!err) err = wasm_image_build_options_add_root_id(options, "add_header_root_id");
    if (!err) err = wasm_image_build(WI_MODULE, WI_MODULE_LEN, options, &image);
    if (err) {
        fprintf(stderr, "    build: %s: %s\n", wasm_image_error_name(err), wasm_image_error_message(err));
        wasm_image_error_free(err);
    }
    wasm_image_build_options_free(options);
    return image;
}

static int module_is_ours(const wasm_image_image_t *image) {
    size_t len = 0;
    const uint8_t *data = wasm_image_image_module(image, &len);
    return data && len == WI_MODULE_LEN && memcmp(data, WI_MODULE, len) == 0;
}

/* ------------------------------------------------------------------------- tests -- */

static void test_version(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", WASM_IMAGE_VERSION_MAJOR, WASM_IMAGE_VERSION_MINOR,
             WASM_IMAGE_VERSION_PATCH);
    CHECK_STR(wasm_image_version(), WASM_IMAGE_VERSION_STRING);
    CHECK_STR(wasm_image_version(), expected);
}

static void test_error_kinds_have_their_contract_numbers(void) {
    CHECK(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT == 1);
    CHECK(WASM_IMAGE_ERROR_KIND_NOT_FOUND == 3);
    CHECK(WASM_IMAGE_ERROR_KIND_DIGEST_MISMATCH == 8);
    CHECK(WASM_IMAGE_ERROR_KIND_INTERNAL == 15);
    CHECK(WASM_IMAGE_ERROR_KIND_SIGNATURE_INVALID == 16);
    CHECK_STR(wasm_image_error_kind_name(WASM_IMAGE_ERROR_KIND_SIGNATURE_INVALID), "SIGNATURE_INVALID");
    CHECK_STR(wasm_image_error_kind_name(WASM_IMAGE_ERROR_KIND_LIMIT_EXCEEDED), "LIMIT_EXCEEDED");
    CHECK_STR(wasm_image_error_kind_name(WASM_IMAGE_ERROR_KIND_RATE_LIMITED), "RATE_LIMITED");
    CHECK(wasm_image_error_kind_name(0) == NULL);
    CHECK(wasm_image_error_kind_name(17) == NULL);
    /* NULL is success: the accessors say so instead of crashing. */
    CHECK(wasm_image_error_kind(NULL) == WASM_IMAGE_ERROR_KIND_NONE);
    CHECK_STR(wasm_image_error_message(NULL), "");
    CHECK(wasm_image_error_http_status(NULL) == 0);
    CHECK(wasm_image_error_registry_code(NULL) == NULL);
}

static void test_invalid_arguments_never_crash(void) {
    wasm_image_client_t *client = NULL;
    wasm_image_image_t *image = NULL;
    wasm_image_client_options_t *options = wasm_image_client_options_new();
    char *digest = (char *)"untouched";
    const char bad_utf8[] = {'o', 'c', 'i', ':', (char)0xff, (char)0xfe, 0};

    OK(wasm_image_client_new(NULL, &client));
    /* NULL where a handle, a string or an out-pointer is required. */
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_pull(NULL, "oci:x:y", NULL, &image));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_pull(client, NULL, NULL, &image));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_pull(client, "oci:x:y", NULL, NULL));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_client_new(NULL, NULL));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_push(client, NULL, "oci:x:y", NULL, &digest));
    CHECK(digest == NULL); /* out-pointers are cleared on failure */
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_copy(client, "oci:a:b", NULL, NULL, NULL));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_resolve(client, "oci:a:b", NULL, NULL, NULL, NULL));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_build(NULL, 8, NULL, &image));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_module_facts(WI_MODULE, WI_MODULE_LEN, NULL));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_client_options_set_user_agent(NULL, "x"));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_client_options_set_basic_auth(options, "h", NULL, "p"));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_cancel_token_cancel(NULL));
    /* Bad UTF-8 in a string. */
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_pull(client, bad_utf8, NULL, &image));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_client_options_add_insecure_registry(options, bad_utf8));
    /* Out-of-range enum values and malformed option values. */
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_set_log_callback(0, NULL, NULL));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_set_log_callback(6, NULL, NULL));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_client_options_set_platform(options, "linux"));
    /* A handle of another type passed by mistake. */
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT,
               wasm_image_pull((const wasm_image_client_t *)options, "oci:x:y", NULL, &image));
    CHECK(image == NULL);
    /* Accessors have no error to return: they give NULL / 0 for NULL. */
    CHECK(wasm_image_image_module(NULL, NULL) == NULL);
    CHECK(wasm_image_image_manifest_digest(NULL) == NULL);
    CHECK(wasm_image_image_annotation_count(NULL) == 0);
out:
    wasm_image_client_options_free(options);
    wasm_image_client_free(client);
}

static void test_freed_handles_are_detected(void) {
    wasm_image_client_t *client = NULL;
    wasm_image_image_t *image = NULL;
    wasm_image_error_t *err;
    OK(wasm_image_client_new(NULL, &client));
    wasm_image_client_free(client);
    /* Use after free and a second free are INVALID_ARGUMENT / ignored, not a crash. */
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_pull(client, "oci:x:y", NULL, &image));
    wasm_image_client_free(client);
    client = NULL;

    image = build_module("oci");
    REQUIRE(image != NULL);
    wasm_image_image_free(image);
    CHECK(wasm_image_image_manifest_digest(image) == NULL);
    wasm_image_image_free(image);
    {
        /* The next image of the same type does not take the freed one's place: the stale
         * pointer stays detected, and freeing it again leaves the new image alone. */
        wasm_image_image_t *fresh = build_module("oci");
        REQUIRE(fresh != NULL);
        CHECK(fresh != image);
        CHECK(wasm_image_image_manifest_digest(image) == NULL);
        wasm_image_image_free(image);
        CHECK(wasm_image_image_manifest_digest(fresh) != NULL);
        wasm_image_image_free(fresh);
    }
    image = NULL;

    err = wasm_image_set_log_callback(WASM_IMAGE_LOG_LEVEL_INFO, NULL, NULL); /* NULL callback: off */
    CHECK(err == NULL);
    err = wasm_image_cancel_token_cancel(NULL);
    CHECK(wasm_image_error_kind(err) == WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT);
    wasm_image_error_free(err);
    wasm_image_error_free(err); /* a freed error freed again */
    CHECK(wasm_image_error_kind(err) == WASM_IMAGE_ERROR_KIND_NONE);
    wasm_image_string_free(NULL);
out:;
}

static void test_build_and_read_every_field(void) {
    wasm_image_build_options_t *options = wasm_image_build_options_new();
    wasm_image_image_t *image = NULL;
    wasm_image_module_facts_t *facts = NULL;
    size_t len = 0;

    OK(wasm_image_build_options_set_variant(options, "oci"));
    OK(wasm_image_build_options_set_runtime_type(options, "envoy_proxy"));
    OK(wasm_image_build_options_add_abi_version(options, "v0.2.1"));
    OK(wasm_image_build_options_add_abi_version(options, "v0.2.0"));
    OK(wasm_image_build_options_add_root_id(options, "add_header_root_id"));
    OK(wasm_image_build_options_set_annotation(options, "org.example/owner", "team-edge"));
    OK(wasm_image_build_options_set_source_date_epoch(options, 1700000000));
    OK(wasm_image_build(WI_MODULE, WI_MODULE_LEN, options, &image));

    CHECK(module_is_ours(image));
    CHECK(wasm_image_image_module_size(image) == WI_MODULE_LEN);
    CHECK_STR(wasm_image_image_variant(image), "oci");
    CHECK(strncmp(wasm_image_image_module_digest(image), "sha256:", 7) == 0);
    CHECK(strlen(wasm_image_image_manifest_digest(image)) == 71);
    CHECK(wasm_image_image_index_digest(image) == NULL);
    CHECK_STR(wasm_image_image_manifest_media_type(image), "application/vnd.oci.image.manifest.v1+json");
    CHECK(wasm_image_image_manifest(image, &len) != NULL && len > 100);
    CHECK(wasm_image_image_config(image, &len) != NULL && len > 10);
    CHECK(wasm_image_image_has_runtime_config(image));
    CHECK_STR(wasm_image_image_runtime_type(image), "envoy_proxy");
    CHECK(wasm_image_image_abi_version_count(image) == 2);
    CHECK_STR(wasm_image_image_abi_version(image, 0), "v0.2.1");
    CHECK_STR(wasm_image_image_abi_version(image, 1), "v0.2.0");
    CHECK(wasm_image_image_abi_version(image, 2) == NULL);
    CHECK(wasm_image_image_root_id_count(image) == 1);
    CHECK_STR(wasm_image_image_root_id(image, 0), "add_header_root_id");
    CHECK(strstr(wasm_image_image_runtime_config_json(image), "\"rootIds\"") != NULL);
    CHECK_STR(wasm_image_image_annotation(image, "org.example/owner"), "team-edge");
    CHECK(wasm_image_image_annotation(image, "no.such/key") == NULL);
    {
        size_t n = wasm_image_image_annotation_count(image), i, found = 0;
        CHECK(n >= 2); /* ours, the creation time, the runtime type... */
        for (i = 0; i < n; i++)
            if (strcmp(wasm_image_image_annotation_key(image, i), "org.opencontainers.image.created") == 0) {
                CHECK_STR(wasm_image_image_annotation_value(image, i), "2023-11-14T22:13:20Z");
                found = 1;
            }
        CHECK(found);
        CHECK(wasm_image_image_annotation_key(image, n) == NULL);
    }

    /* The module is borrowed: the same pointer every time, facts read from it. */
    {
        const uint8_t *a = wasm_image_image_module(image, &len);
        CHECK(a == wasm_image_image_module(image, NULL));
        OK(wasm_image_module_facts(a, len, &facts));
    }
    CHECK(wasm_image_module_facts_kind(facts) == WASM_IMAGE_MODULE_KIND_CORE_MODULE);
    CHECK_STR(wasm_image_module_facts_kind_name(facts), "core-module");
    CHECK(wasm_image_module_facts_size(facts) == WI_MODULE_LEN);
    CHECK(wasm_image_module_facts_import_count(facts) == 0);
    CHECK(wasm_image_module_facts_export_count(facts) == 1);
    CHECK_STR(wasm_image_module_facts_export(facts, 0), "proxy_abi_version_0_2_1");
    CHECK(wasm_image_module_facts_proxy_abi_version_count(facts) == 1);
    CHECK_STR(wasm_image_module_facts_proxy_abi_version(facts, 0), "v0.2.1");
out:
    wasm_image_module_facts_free(facts);
    wasm_image_image_free(image);
    wasm_image_build_options_free(options);
}

static void test_build_compat_docker_and_refusals(void) {
    wasm_image_build_options_t *options = wasm_image_build_options_new();
    wasm_image_image_t *image = NULL;
    wasm_image_module_facts_t *facts = NULL;
    static const unsigned char not_wasm[] = "#!/bin/sh\necho hello\n";

    OK(wasm_image_build_options_set_variant(options, "compat"));
    OK(wasm_image_build_options_set_manifest_format(options, "docker"));
    OK(wasm_image_build(WI_MODULE, WI_MODULE_LEN, options, &image));
    CHECK_STR(wasm_image_image_variant(image), "compat");
    CHECK_STR(wasm_image_image_manifest_media_type(image), "application/vnd.docker.distribution.manifest.v2+json");
    /* Without runtime options, compat carries the module's ABI versions only if asked. */
    CHECK(module_is_ours(image));
    wasm_image_image_free(image);
    image = NULL;

    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_FORMAT, wasm_image_build(not_wasm, sizeof not_wasm, NULL, &image));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_FORMAT, wasm_image_module_facts(not_wasm, sizeof not_wasm, &facts));
    CHECK(image == NULL && facts == NULL);
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_build_options_set_variant(options, "tarball"));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_build_options_set_manifest_format(options, "v1"));
    /* The oci variant has no Docker form. */
    OK(wasm_image_build_options_set_variant(options, "oci"));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_build(WI_MODULE, WI_MODULE_LEN, options, &image));
out:
    wasm_image_image_free(image);
    wasm_image_build_options_free(options);
}

/* Progress callback state: every call must come on the thread that made the call. */
struct progress_seen {
    pthread_t caller;
    int calls;
    int wrong_thread;
    int finished_blobs;
};

static void on_progress(void *user_data, const wasm_image_progress_t *progress) {
    struct progress_seen *seen = user_data;
    seen->calls++;
    if (!pthread_equal(seen->caller, pthread_self())) seen->wrong_thread++;
    if (progress->digest && strncmp(progress->digest, "sha256:", 7) == 0 && progress->done == progress->total)
        seen->finished_blobs++;
}

static void test_layout_round_trip(void) {
    char *dir = wi_tempdir("layout");
    char location[4200], copy_location[4200], file[4200];
    wasm_image_client_t *client = NULL;
    wasm_image_image_t *built = NULL, *pulled = NULL, *info = NULL;
    wasm_image_call_options_t *call = wasm_image_call_options_new();
    struct progress_seen seen = {pthread_self(), 0, 0, 0};
    char *digest = NULL, *copied = NULL, *resolved = NULL, *media_type = NULL;
    uint64_t size = 0;
    size_t len = 0;

    REQUIRE(dir != NULL);
    snprintf(location, sizeof location, "oci:%s/store:plugin", dir);
    snprintf(copy_location, sizeof copy_location, "oci:%s/copy:again", dir);
    snprintf(file, sizeof file, "%s/plugin.wasm", dir);
    OK(wasm_image_client_new(NULL, &client));
    built = build_module("oci");
    REQUIRE(built != NULL);
    OK(wasm_image_call_options_set_progress(call, on_progress, &seen));

    OK(wasm_image_push(client, built, location, call, &digest));
    CHECK_STR(digest, wasm_image_image_manifest_digest(built));
    CHECK(seen.calls > 0 && seen.wrong_thread == 0);

    OK(wasm_image_pull(client, location, call, &pulled));
    CHECK(module_is_ours(pulled));
    CHECK_STR(wasm_image_image_manifest_digest(pulled), digest);
    CHECK_STR(wasm_image_image_module_digest(pulled), wasm_image_image_module_digest(built));
    CHECK_STR(wasm_image_image_variant(pulled), "oci");
    CHECK_STR(wasm_image_image_root_id(pulled, 0), "add_header_root_id");
    CHECK(seen.wrong_thread == 0);

    OK(wasm_image_resolve(client, location, NULL, &resolved, &media_type, &size));
    CHECK_STR(resolved, digest);
    CHECK_STR(media_type, "application/vnd.oci.image.manifest.v1+json");
    CHECK(size > 0);

    OK(wasm_image_copy(client, location, copy_location, call, &copied));
    CHECK_STR(copied, digest);

    OK(wasm_image_pull_to_file(client, copy_location, file, NULL, &info));
    CHECK(wasm_image_image_module(info, &len) == NULL && len == 0); /* the module is in the file */
    CHECK(wasm_image_image_module_size(info) == WI_MODULE_LEN);
    CHECK_STR(wasm_image_image_manifest_digest(info), digest);
    {
        unsigned char *data = wi_read_file(file, &len);
        CHECK(data && len == WI_MODULE_LEN && memcmp(data, WI_MODULE, len) == 0);
        free(data);
    }
    /* An image without its module cannot be pushed. */
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_push(client, info, location, NULL, NULL));
    /* The output may be omitted. */
    OK(wasm_image_pull_to_file(client, location, file, NULL, NULL));
out:
    wasm_image_string_free(digest);
    wasm_image_string_free(copied);
    wasm_image_string_free(resolved);
    wasm_image_string_free(media_type);
    wasm_image_image_free(built);
    wasm_image_image_free(pulled);
    wasm_image_image_free(info);
    wasm_image_call_options_free(call);
    wasm_image_client_free(client);
    if (dir) wi_remove_tree(dir);
    free(dir);
}

/* Test-only P-256 keys (made with openssl for these tests; they sign nothing else). */
static const char SIGNING_KEY[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgovKJ0YLqk+unjtE2\n"
    "7lWZcT9UqPrGgaH0e2DuOQhEUMihRANCAASX6tYyI1cEmOdP84m/UseODPc/PS7V\n"
    "Bm6jIXF99idwJcbiWolNJgPD8fWYQT03hY/PRUI2gKRC3fscmLQcUp0a\n"
    "-----END PRIVATE KEY-----\n";
static const char SIGNING_PUBLIC_KEY[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEl+rWMiNXBJjnT/OJv1LHjgz3Pz0u\n"
    "1QZuoyFxffYncCXG4lqJTSYDw/H1mEE9N4WPz0VCNoCkQt37HJi0HFKdGg==\n"
    "-----END PUBLIC KEY-----\n";
static const char OTHER_PUBLIC_KEY[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEdoweZtSBhKRzWOmt0N8FnIvYPdvg\n"
    "B3fq6avW+nuPc8SRMW5MCcfEnuRJBFeuArAptACTXxhaUncna5dtKXTAUw==\n"
    "-----END PUBLIC KEY-----\n";

static void test_signing_and_verification_policy(void) {
    char *dir = wi_tempdir("signing");
    char signed_location[4200], unsigned_location[4200], file[4200], pattern[4200];
    wasm_image_client_t *client = NULL, *strict = NULL;
    wasm_image_client_options_t *opts = wasm_image_client_options_new();
    wasm_image_image_t *built = NULL, *pulled = NULL, *refused = NULL;
    size_t len = 0;
    wasm_image_call_options_t *sign = wasm_image_call_options_new();
    wasm_image_call_options_t *verify = wasm_image_call_options_new();
    wasm_image_call_options_t *wrong = wasm_image_call_options_new();
    wasm_image_call_options_t *skip = wasm_image_call_options_new();

    REQUIRE(dir != NULL);
    snprintf(signed_location, sizeof signed_location, "oci:%s/signed:v1", dir);
    snprintf(unsigned_location, sizeof unsigned_location, "oci:%s/unsigned:v1", dir);
    snprintf(file, sizeof file, "%s/plugin.wasm", dir);
    snprintf(pattern, sizeof pattern, "oci:%s/signed", dir);
    OK(wasm_image_client_new(NULL, &client));
    built = build_module("oci");
    REQUIRE(built != NULL);

    OK(wasm_image_call_options_set_signing_key(sign, (const uint8_t *)SIGNING_KEY, strlen(SIGNING_KEY), NULL));
    OK(wasm_image_push(client, built, signed_location, sign, NULL));
    OK(wasm_image_push(client, built, unsigned_location, NULL, NULL));

    OK(wasm_image_call_options_require_signature(verify, (const uint8_t *)SIGNING_PUBLIC_KEY,
                                                 strlen(SIGNING_PUBLIC_KEY), NULL));
    OK(wasm_image_pull(client, signed_location, verify, &pulled));
    CHECK(module_is_ours(pulled));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_SIGNATURE_INVALID, wasm_image_pull(client, unsigned_location, verify, &refused));
    CHECK(refused == NULL);
    OK(wasm_image_call_options_require_signature(wrong, (const uint8_t *)OTHER_PUBLIC_KEY, strlen(OTHER_PUBLIC_KEY),
                                                 NULL));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_SIGNATURE_INVALID, wasm_image_pull_to_file(client, signed_location, file, wrong, NULL));
    CHECK(wi_read_file(file, &len) == NULL); /* nothing written */

    /* A client policy: this store's signed image needs the key; everything else is exempt. */
    OK(wasm_image_client_options_require_signature(opts, "oci:*", (const uint8_t *)OTHER_PUBLIC_KEY,
                                                   strlen(OTHER_PUBLIC_KEY), NULL));
    OK(wasm_image_client_options_require_signature(opts, pattern, (const uint8_t *)SIGNING_PUBLIC_KEY,
                                                   strlen(SIGNING_PUBLIC_KEY), NULL));
    OK(wasm_image_client_new(opts, &strict));
    wasm_image_image_free(pulled);
    pulled = NULL;
    OK(wasm_image_pull(strict, signed_location, NULL, &pulled));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_SIGNATURE_INVALID, wasm_image_pull(strict, unsigned_location, NULL, &refused));
    CHECK(refused == NULL);
    OK(wasm_image_call_options_skip_signature(skip));
    OK(wasm_image_pull_to_file(strict, unsigned_location, file, skip, NULL));

    /* Bad keys and patterns are invalid arguments. */
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT,
               wasm_image_call_options_require_signature(verify, (const uint8_t *)"junk", 4, NULL));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT,
               wasm_image_call_options_set_signing_key(sign, (const uint8_t *)SIGNING_PUBLIC_KEY,
                                                       strlen(SIGNING_PUBLIC_KEY), NULL));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_client_options_exempt_from_signature(opts, ""));
    /* Keyless trust material that cannot be read, a missing identity or a malformed
       identity pattern are invalid arguments too. */
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT,
               wasm_image_call_options_require_keyless_signature(verify, (const uint8_t *)"junk", 4,
                                                                 (const uint8_t *)SIGNING_PUBLIC_KEY,
                                                                 strlen(SIGNING_PUBLIC_KEY), "https://issuer.example",
                                                                 false, "signer@example.test", false, NULL));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT,
               wasm_image_call_options_require_keyless_signature(verify, (const uint8_t *)"junk", 4,
                                                                 (const uint8_t *)SIGNING_PUBLIC_KEY,
                                                                 strlen(SIGNING_PUBLIC_KEY), NULL, false,
                                                                 "signer@example.test", false, NULL));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT,
               wasm_image_client_options_require_keyless_signature(opts, pattern, (const uint8_t *)"junk", 4,
                                                                   (const uint8_t *)SIGNING_PUBLIC_KEY,
                                                                   strlen(SIGNING_PUBLIC_KEY), "https://issuer.example",
                                                                   false, "(", true, NULL));
    OK(wasm_image_client_options_exempt_from_signature(opts, "oci:*"));
out:
    wasm_image_image_free(built);
    wasm_image_image_free(pulled);
    wasm_image_call_options_free(sign);
    wasm_image_call_options_free(verify);
    wasm_image_call_options_free(wrong);
    wasm_image_call_options_free(skip);
    wasm_image_client_options_free(opts);
    wasm_image_client_free(client);
    wasm_image_client_free(strict);
    if (dir) wi_remove_tree(dir);
    free(dir);
}

/* An image signed keyless by a test Fulcio and Rekor (WASM_IMAGE_KEYLESS_FIXTURE, written
   by core's keyless_fixture example): the trust given here reaches core intact, as exact
   identities and as patterns, per call and per client pattern; a wrong subject, issuer
   or root is SIGNATURE_INVALID. */
static void test_keyless_signature_from_a_test_sigstore(void) {
    const char *fixture = wi_env("WASM_IMAGE_KEYLESS_FIXTURE");
    if (!fixture) {
        test_skipped = "WASM_IMAGE_KEYLESS_FIXTURE unset: no keyless-signed image";
        return;
    }
    char path[4200], location[4200];
    size_t roots_len = 0, rekor_len = 0, other_roots_len = 0, other_rekor_len = 0, issuer_len = 0, subject_len = 0;
    unsigned char *roots = NULL, *rekor = NULL, *other_roots = NULL, *other_rekor = NULL;
    unsigned char *issuer_bytes = NULL, *subject_bytes = NULL;
    char *issuer = NULL, *subject = NULL, *dir = NULL, *file = NULL;
    wasm_image_client_t *client = NULL, *strict = NULL;
    wasm_image_client_options_t *opts = NULL;
    wasm_image_call_options_t *exact = wasm_image_call_options_new(), *pattern = wasm_image_call_options_new();
    wasm_image_call_options_t *wrong_subject = wasm_image_call_options_new(), *wrong_issuer = wasm_image_call_options_new();
    wasm_image_call_options_t *wrong_root = wasm_image_call_options_new();
    wasm_image_image_t *pulled = NULL, *refused = NULL;
#define FIXTURE_FILE(name, out, len)                                                                \
    do {                                                                                          \
        snprintf(path, sizeof path, "%s/%s", fixture, name);                                      \
        out = wi_read_file(path, &len);                                                           \
        REQUIRE(out != NULL);                                                                     \
    } while (0)
    FIXTURE_FILE("fulcio_root.pem", roots, roots_len);
    FIXTURE_FILE("rekor.pub", rekor, rekor_len);
    FIXTURE_FILE("other_fulcio_root.pem", other_roots, other_roots_len);
    FIXTURE_FILE("other_rekor.pub", other_rekor, other_rekor_len);
    FIXTURE_FILE("issuer", issuer_bytes, issuer_len);
    FIXTURE_FILE("subject", subject_bytes, subject_len);
#undef FIXTURE_FILE
    issuer = strndup((const char *)issuer_bytes, issuer_len);
    subject = strndup((const char *)subject_bytes, subject_len);
    snprintf(location, sizeof location, "oci:%s/layout:v1", fixture);
    dir = wi_tempdir("keyless");
    REQUIRE(dir && issuer && subject);
    file = malloc(4200);
    snprintf(file, 4200, "%s/plugin.wasm", dir);
    OK(wasm_image_client_new(NULL, &client));

    OK(wasm_image_call_options_require_keyless_signature(exact, roots, roots_len, rekor, rekor_len, issuer, false,
                                                         subject, false, NULL));
    OK(wasm_image_pull(client, location, exact, &pulled));
    {
        size_t len = 0;
        const uint8_t *module = wasm_image_image_module(pulled, &len);
        CHECK(module && len > 8 && memcmp(module, "\0asm", 4) == 0);
    }
    OK(wasm_image_call_options_require_keyless_signature(pattern, roots, roots_len, rekor, rekor_len,
                                                         "https://issuer[.]example[.]test", true,
                                                         ".*@example[.]test", true, NULL));
    OK(wasm_image_pull_to_file(client, location, file, pattern, NULL));
    {
        size_t len = 0;
        unsigned char *data = wi_read_file(file, &len);
        CHECK(data && len > 8 && memcmp(data, "\0asm", 4) == 0);
        free(data);
        remove(file);
    }

    OK(wasm_image_call_options_require_keyless_signature(wrong_subject, roots, roots_len, rekor, rekor_len, issuer,
                                                         false, "someone-else@example.test", false, NULL));
    OK(wasm_image_call_options_require_keyless_signature(wrong_issuer, roots, roots_len, rekor, rekor_len,
                                                         "https://other-issuer.example.test", false, subject, false,
                                                         NULL));
    OK(wasm_image_call_options_require_keyless_signature(wrong_root, other_roots, other_roots_len, other_rekor,
                                                         other_rekor_len, issuer, false, subject, false, NULL));
    wasm_image_call_options_t *refusing[] = {wrong_subject, wrong_issuer, wrong_root};
    for (size_t i = 0; i < sizeof refusing / sizeof refusing[0]; i++) {
        FAILS_WITH(WASM_IMAGE_ERROR_KIND_SIGNATURE_INVALID, wasm_image_pull(client, location, refusing[i], &refused));
        CHECK(refused == NULL);
        FAILS_WITH(WASM_IMAGE_ERROR_KIND_SIGNATURE_INVALID,
                   wasm_image_pull_to_file(client, location, file, refusing[i], NULL));
        size_t len = 0;
        CHECK(wi_read_file(file, &len) == NULL); /* nothing written */
    }

    /* The same trust as the client's policy for a pattern. */
    opts = wasm_image_client_options_new();
    OK(wasm_image_client_options_require_keyless_signature(opts, "oci:*", roots, roots_len, rekor, rekor_len, issuer,
                                                           false, subject, false, NULL));
    OK(wasm_image_client_new(opts, &strict));
    wasm_image_image_free(pulled);
    pulled = NULL;
    OK(wasm_image_pull(strict, location, NULL, &pulled));
    CHECK(pulled != NULL);
out:
    wasm_image_image_free(pulled);
    wasm_image_call_options_free(exact);
    wasm_image_call_options_free(pattern);
    wasm_image_call_options_free(wrong_subject);
    wasm_image_call_options_free(wrong_issuer);
    wasm_image_call_options_free(wrong_root);
    wasm_image_client_options_free(opts);
    wasm_image_client_free(client);
    wasm_image_client_free(strict);
    free(roots);
    free(rekor);
    free(other_roots);
    free(other_rekor);
    free(issuer_bytes);
    free(subject_bytes);
    free(issuer);
    free(subject);
    free(file);
    if (dir) wi_remove_tree(dir);
    free(dir);
}

static void test_layout_errors(void) {
    char *dir = wi_tempdir("errors");
    char location[4200], path[4200];
    wasm_image_client_t *client = NULL, *small = NULL;
    wasm_image_client_options_t *options = wasm_image_client_options_new();
    wasm_image_image_t *built = NULL, *image = NULL;
    wasm_image_cancel_token_t *token = wasm_image_cancel_token_new();
    wasm_image_call_options_t *call = wasm_image_call_options_new();
    char *digest = NULL;

    REQUIRE(dir != NULL);
    OK(wasm_image_client_new(NULL, &client));
    built = build_module("oci");
    REQUIRE(built != NULL);
    snprintf(location, sizeof location, "oci:%s/store:plugin", dir);
    OK(wasm_image_push(client, built, location, NULL, NULL));

    /* INVALID_REFERENCE: a location that does not parse. */
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_REFERENCE, wasm_image_pull(client, "Not A Reference!", NULL, &image));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_REFERENCE, wasm_image_pull(client, "localhost:5000/UPPER:tag", NULL, &image));
    /* NOT_FOUND: a missing tag in a layout, a missing layout. */
    snprintf(path, sizeof path, "oci:%s/store:missing", dir);
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_NOT_FOUND, wasm_image_pull(client, path, NULL, &image));
    snprintf(path, sizeof path, "oci:%s/no-such-layout:plugin", dir);
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_NOT_FOUND, wasm_image_pull(client, path, NULL, &image));

    /* LIMIT_EXCEEDED: a module larger than the client's limit. */
    OK(wasm_image_client_options_set_max_module_bytes(options, 8));
    OK(wasm_image_client_new(options, &small));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_LIMIT_EXCEEDED, wasm_image_pull(small, location, NULL, &image));

    /* CANCELLED: a token cancelled before the call. */
    OK(wasm_image_call_options_set_cancel_token(call, token));
    OK(wasm_image_cancel_token_cancel(token));
    CHECK(wasm_image_cancel_token_is_cancelled(token));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_CANCELLED, wasm_image_pull(client, location, call, &image));

    /* IO: the output's parent is a file. */
    snprintf(path, sizeof path, "%s/store/oci-layout/plugin.wasm", dir);
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_IO, wasm_image_pull_to_file(client, location, path, NULL, NULL));

    /* DIGEST_MISMATCH: the module blob altered in place (same size, other bytes). */
    {
        char *blob;
        size_t len = 0;
        unsigned char *data;
        snprintf(path, sizeof path, "%s/store", dir);
        blob = wi_blob_path(path, wasm_image_image_module_digest(built));
        data = wi_read_file(blob, &len);
        REQUIRE(data != NULL && len == WI_MODULE_LEN);
        data[len - 1] ^= 0x01;
        CHECK(wi_write_file(blob, data, len) == 0);
        free(data);
        free(blob);
        FAILS_WITH(WASM_IMAGE_ERROR_KIND_DIGEST_MISMATCH, wasm_image_pull(client, location, NULL, &image));
    }

    /* INVALID_FORMAT: a layout whose index is not JSON. */
    snprintf(path, sizeof path, "%s/broken", dir);
    CHECK(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/broken/oci-layout", dir);
    CHECK(wi_write_file(path, "{\"imageLayoutVersion\":\"1.0.0\"}", 30) == 0);
    snprintf(path, sizeof path, "%s/broken/index.json", dir);
    CHECK(wi_write_file(path, "this is not json", 16) == 0);
    snprintf(path, sizeof path, "oci:%s/broken:plugin", dir);
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_FORMAT, wasm_image_pull(client, path, NULL, &image));

    /* Pushing to a location that pins another digest. */
    snprintf(path, sizeof path, "oci:%s/store@sha256:%064d", dir, 0);
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_push(client, built, path, NULL, &digest));
    CHECK(image == NULL && digest == NULL);
out:
    wasm_image_image_free(built);
    wasm_image_image_free(image);
    wasm_image_call_options_free(call);
    wasm_image_cancel_token_free(token);
    wasm_image_client_options_free(options);
    wasm_image_client_free(client);
    wasm_image_client_free(small);
    if (dir) wi_remove_tree(dir);
    free(dir);
}

static void test_client_options_accept_every_setting(void) {
    wasm_image_client_options_t *options = wasm_image_client_options_new();
    wasm_image_client_t *client = NULL;
    static const char docker_config[] = "{\"auths\":{\"registry.example\":{\"auth\":\"dXNlcjpwYXNz\"}}}";
    const char *ca = wi_env("WI_TLS_CA");

    OK(wasm_image_client_options_set_basic_auth(options, "registry.example", "user", "secret"));
    OK(wasm_image_client_options_set_bearer_token(options, "other.example:5000", "token"));
    OK(wasm_image_client_options_set_docker_config_json(options, (const uint8_t *)docker_config, strlen(docker_config)));
    OK(wasm_image_client_options_set_use_config_files(options, false));
    OK(wasm_image_client_options_add_insecure_registry(options, "127.0.0.1:5000"));
    OK(wasm_image_client_options_set_connect_timeout_ms(options, 2000));
    OK(wasm_image_client_options_set_read_timeout_ms(options, 5000));
    OK(wasm_image_client_options_set_max_retries(options, 1));
    OK(wasm_image_client_options_set_retry_base_delay_ms(options, 10));
    OK(wasm_image_client_options_set_retry_max_delay_ms(options, 100));
    OK(wasm_image_client_options_set_call_timeout_ms(options, 60000));
    OK(wasm_image_client_options_set_call_timeout_ms(options, 0));
    OK(wasm_image_client_options_set_max_module_bytes(options, 1 << 20));
    OK(wasm_image_client_options_set_max_metadata_bytes(options, 1 << 20));
    OK(wasm_image_client_options_set_max_decompressed_bytes(options, 1 << 22));
    OK(wasm_image_client_options_set_max_tar_entries(options, 100));
    OK(wasm_image_client_options_set_max_index_depth(options, 2));
    OK(wasm_image_client_options_set_max_index_entries(options, 10));
    OK(wasm_image_client_options_add_mirror(options, "docker.io", "mirror.example"));
    OK(wasm_image_client_options_set_platform(options, "wasip1/wasm"));
    OK(wasm_image_client_options_set_platform(options, NULL));
    OK(wasm_image_client_options_set_user_agent(options, "test_c/1.0"));
    if (ca) OK(wasm_image_client_options_add_ca_certificates_file(options, ca));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_NOT_FOUND,
               wasm_image_client_options_add_ca_certificates_file(options, "/no/such/ca.pem"));
    OK(wasm_image_client_new(options, &client));
out:
    wasm_image_client_free(client);
    wasm_image_client_options_free(options);
}

/* --------------------------------------------------------- against the registries -- */

static void test_registry_push_pull_both_variants(void) {
    const char *variants[] = {"oci", "compat"};
    wasm_image_client_t *client;
    SKIP_UNLESS_REGISTRY();
    client = registry_client(NULL);
    REQUIRE(client != NULL);
    for (size_t i = 0; i < 2; i++) {
        char repo[128], location[512];
        wasm_image_image_t *built = build_module(variants[i]), *pulled = NULL;
        char *digest = NULL, *resolved = NULL;
        wi_unique_repo(repo, sizeof repo, variants[i]);
        snprintf(location, sizeof location, "%s/%s:v1", wi_env("WI_PLAIN"), repo);
        REQUIRE(built != NULL);
        OK(wasm_image_push(client, built, location, NULL, &digest));
        OK(wasm_image_pull(client, location, NULL, &pulled));
        CHECK(module_is_ours(pulled));
        CHECK_STR(wasm_image_image_variant(pulled), variants[i]);
        CHECK_STR(wasm_image_image_manifest_digest(pulled), digest);
        OK(wasm_image_resolve(client, location, NULL, &resolved, NULL, NULL));
        CHECK_STR(resolved, digest);
        wasm_image_string_free(digest);
        wasm_image_string_free(resolved);
        wasm_image_image_free(built);
        wasm_image_image_free(pulled);
    }
out:
    wasm_image_client_free(client);
}

static void test_registry_pull_buildah_fixtures_and_copy_to_layout(void) {
    const char *fixtures[] = {"WI_FIXTURE_OCI", "WI_FIXTURE_DOCKER"};
    char *dir = NULL;
    wasm_image_client_t *client = NULL;
    SKIP_UNLESS_REGISTRY();
    client = registry_client(NULL);
    dir = wi_tempdir("copy");
    REQUIRE(client != NULL && dir != NULL && wi_env("WI_FIXTURE_OCI") && wi_env("WI_FIXTURE_MODULE_SHA256"));
    for (size_t i = 0; i < 2; i++) {
        wasm_image_image_t *image = NULL, *again = NULL;
        char destination[4200], *copied = NULL;
        OK(wasm_image_pull(client, wi_env(fixtures[i]), NULL, &image));
        CHECK_STR(wasm_image_image_variant(image), "compat");
        CHECK_STR(wasm_image_image_module_digest(image), wi_env("WI_FIXTURE_MODULE_SHA256"));
        snprintf(destination, sizeof destination, "oci:%s/layout:fixture%zu", dir, i);
        OK(wasm_image_copy(client, wi_env(fixtures[i]), destination, NULL, &copied));
        CHECK_STR(copied, wasm_image_image_manifest_digest(image));
        OK(wasm_image_pull(client, destination, NULL, &again));
        CHECK_STR(wasm_image_image_module_digest(again), wi_env("WI_FIXTURE_MODULE_SHA256"));
        wasm_image_string_free(copied);
        wasm_image_image_free(image);
        wasm_image_image_free(again);
    }
out:
    wasm_image_client_free(client);
    if (dir) wi_remove_tree(dir);
    free(dir);
}

static void test_registry_error_kinds(void) {
    wasm_image_client_t *client = NULL, *fast = NULL, *authed = NULL, *wrong = NULL;
    wasm_image_client_options_t *options = NULL;
    wasm_image_image_t *image = NULL;
    char location[512];
    wasm_image_error_t *err;
    SKIP_UNLESS_REGISTRY();
    client = registry_client(NULL);
    REQUIRE(client != NULL);

    /* NOT_FOUND with the registry's own code. */
    snprintf(location, sizeof location, "%s/fixtures/buildah-oci:no-such-tag", wi_env("WI_PLAIN"));
    err = wasm_image_pull(client, location, NULL, &image);
    CHECK(wasm_image_error_kind(err) == WASM_IMAGE_ERROR_KIND_NOT_FOUND);
    CHECK(wasm_image_error_http_status(err) == 404);
    CHECK(wasm_image_error_registry_code(err) && strcmp(wasm_image_error_registry_code(err), "MANIFEST_UNKNOWN") == 0);
    CHECK(strstr(wasm_image_error_message(err), "no-such-tag") != NULL);
    wasm_image_error_free(err);

    /* UNAUTHORIZED without credentials and with wrong ones; fine with the right ones. */
    if (wi_env("WI_BASIC")) {
        const char *password = wi_env("WI_BASIC_PASSWORD");
        snprintf(location, sizeof location, "%s/fixtures/buildah-oci:latest", wi_env("WI_BASIC"));
        FAILS_WITH(WASM_IMAGE_ERROR_KIND_UNAUTHORIZED, wasm_image_pull(client, location, NULL, &image));
        options = wasm_image_client_options_new();
        OK(wasm_image_client_options_set_basic_auth(options, wi_env("WI_BASIC"), wi_env("WI_BASIC_USER"), "wrong"));
        wrong = registry_client(options);
        err = wasm_image_pull(wrong, location, NULL, &image);
        CHECK(wasm_image_error_kind(err) == WASM_IMAGE_ERROR_KIND_UNAUTHORIZED);
        CHECK(strstr(wasm_image_error_message(err), "wrong") == NULL); /* no secret in messages */
        wasm_image_error_free(err);
        OK(wasm_image_client_options_set_basic_auth(options, wi_env("WI_BASIC"), wi_env("WI_BASIC_USER"), password));
        authed = registry_client(options);
        OK(wasm_image_pull(authed, location, NULL, &image));
        CHECK(strstr(wasm_image_image_variant(image), "compat") != NULL);
        wasm_image_image_free(image);
        image = NULL;
    }

    /* NETWORK: nothing listens on the port. */
    wasm_image_client_options_free(options);
    options = wasm_image_client_options_new();
    snprintf(location, sizeof location, "127.0.0.1:%d", wi_closed_port());
    OK(wasm_image_client_options_add_insecure_registry(options, location));
    OK(wasm_image_client_options_set_max_retries(options, 0));
    OK(wasm_image_client_options_set_read_timeout_ms(options, 1500));
    fast = registry_client(options);
    REQUIRE(fast != NULL);
    strcat(location, "/nothing/here:v1");
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_NETWORK, wasm_image_pull(fast, location, NULL, &image));

    /* Statuses the fault proxy answers instead of the registry. */
    if (wi_env("WI_FAULTY") && wi_env("WI_FAULTY_CONTROL")) {
        struct {
            int status;
            wasm_image_error_kind_t kind;
        } cases[] = {
            {403, WASM_IMAGE_ERROR_KIND_FORBIDDEN},
            {429, WASM_IMAGE_ERROR_KIND_RATE_LIMITED},
            {400, WASM_IMAGE_ERROR_KIND_REGISTRY},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char repo[128], rule[512];
            wi_unique_repo(repo, sizeof repo, "status");
            snprintf(rule, sizeof rule, "[{\"match\":\"/v2/%s/\",\"action\":\"status\",\"status\":%d,\"times\":-1}]",
                     repo, cases[i].status);
            CHECK(wi_http("POST", wi_env("WI_FAULTY_CONTROL"), rule) == 200);
            snprintf(location, sizeof location, "%s/%s:v1", wi_env("WI_FAULTY"), repo);
            err = wasm_image_pull(fast, location, NULL, &image);
            if (wasm_image_error_kind(err) != cases[i].kind)
                FAIL_AT("status %d: expected %s, got %s: %s", cases[i].status, wasm_image_error_kind_name(cases[i].kind),
                        wasm_image_error_name(err), wasm_image_error_message(err));
            CHECK(wasm_image_error_http_status(err) == cases[i].status);
            wasm_image_error_free(err);
        }
    }

    /* TLS: trusted with the test bed's CA, refused without it. */
    if (wi_env("WI_TLS") && wi_env("WI_TLS_CA")) {
        wasm_image_client_t *tls = NULL;
        snprintf(location, sizeof location, "%s/fixtures/buildah-oci:latest", wi_env("WI_TLS"));
        err = wasm_image_pull(client, location, NULL, &image);
        CHECK(wasm_image_error_kind(err) == WASM_IMAGE_ERROR_KIND_NETWORK);
        wasm_image_error_free(err);
        wasm_image_client_options_free(options);
        options = wasm_image_client_options_new();
        OK(wasm_image_client_options_add_ca_certificates_file(options, wi_env("WI_TLS_CA")));
        OK(wasm_image_client_new(options, &tls));
        err = wasm_image_pull(tls, location, NULL, &image);
        CHECK(err == NULL);
        if (err) FAIL_AT("%s: %s", wasm_image_error_name(err), wasm_image_error_message(err));
        wasm_image_error_free(err);
        wasm_image_image_free(image);
        image = NULL;
        wasm_image_client_free(tls);
    }
out:
    wasm_image_image_free(image);
    wasm_image_client_options_free(options);
    wasm_image_client_free(client);
    wasm_image_client_free(fast);
    wasm_image_client_free(authed);
    wasm_image_client_free(wrong);
}

static int pull_ok(const wasm_image_client_t *client, const char *location, const char *what) {
    wasm_image_image_t *image = NULL;
    wasm_image_error_t *err = wasm_image_pull(client, location, NULL, &image);
    int ok = err == NULL && wi_env("WI_FIXTURE_MODULE_SHA256") &&
             strcmp(wasm_image_image_module_digest(image), wi_env("WI_FIXTURE_MODULE_SHA256")) == 0;
    if (err) FAIL_AT("%s: %s: %s", what, wasm_image_error_name(err), wasm_image_error_message(err));
    wasm_image_error_free(err);
    wasm_image_image_free(image);
    return ok;
}

static wasm_image_client_t *client_with(wasm_image_client_options_t *options) {
    wasm_image_client_t *client = registry_client(options);
    wasm_image_client_options_free(options);
    return client;
}

static void test_registry_auth_forms_and_mirrors(void) {
    wasm_image_client_t *client = NULL;
    wasm_image_client_options_t *options;
    char location[512], userpass[256], encoded[400], config[1024];
    SKIP_UNLESS_REGISTRY();

    /* Credentials from a docker config JSON given as bytes (a Kubernetes pull secret). */
    if (wi_env("WI_BASIC")) {
        snprintf(userpass, sizeof userpass, "%s:%s", wi_env("WI_BASIC_USER"), wi_env("WI_BASIC_PASSWORD"));
        wi_base64(userpass, strlen(userpass), encoded);
        snprintf(config, sizeof config, "{\"auths\":{\"%s\":{\"auth\":\"%s\"}}}", wi_env("WI_BASIC"), encoded);
        options = wasm_image_client_options_new();
        OK(wasm_image_client_options_set_docker_config_json(options, (const uint8_t *)config, strlen(config)));
        client = client_with(options);
        REQUIRE(client != NULL);
        snprintf(location, sizeof location, "%s/fixtures/buildah-oci:latest", wi_env("WI_BASIC"));
        CHECK(pull_ok(client, location, "docker config JSON"));
        wasm_image_client_free(client);
        client = NULL;
    }

    /* The token registry: user and password exchanged for a bearer token. */
    if (wi_env("WI_FIXTURE_TOKEN_PRIVATE")) {
        wasm_image_image_t *image = NULL;
        options = wasm_image_client_options_new();
        OK(wasm_image_client_options_add_insecure_registry(options, wi_env("WI_TOKEN")));
        client = client_with(options);
        REQUIRE(client != NULL);
        FAILS_WITH(WASM_IMAGE_ERROR_KIND_UNAUTHORIZED, wasm_image_pull(client, wi_env("WI_FIXTURE_TOKEN_PRIVATE"), NULL, &image));
        wasm_image_client_free(client);
        options = wasm_image_client_options_new();
        OK(wasm_image_client_options_add_insecure_registry(options, wi_env("WI_TOKEN")));
        OK(wasm_image_client_options_set_basic_auth(options, wi_env("WI_TOKEN"), wi_env("WI_TOKEN_USER"),
                                                    wi_env("WI_TOKEN_PASSWORD")));
        client = client_with(options);
        REQUIRE(client != NULL);
        CHECK(pull_ok(client, wi_env("WI_FIXTURE_TOKEN_PRIVATE"), "token registry"));
        wasm_image_client_free(client);
        client = NULL;
    }

    /* A mirror serves reads for a registry that does not answer at all. */
    if (wi_env("WI_MIRROR")) {
        char dead[64];
        snprintf(dead, sizeof dead, "127.0.0.1:%d", wi_closed_port());
        options = wasm_image_client_options_new();
        OK(wasm_image_client_options_add_insecure_registry(options, dead));
        OK(wasm_image_client_options_add_insecure_registry(options, wi_env("WI_MIRROR")));
        OK(wasm_image_client_options_add_mirror(options, dead, wi_env("WI_MIRROR")));
        OK(wasm_image_client_options_set_max_retries(options, 0));
        client = client_with(options);
        REQUIRE(client != NULL);
        snprintf(location, sizeof location, "%s/fixtures/buildah-oci:latest", dead);
        CHECK(pull_ok(client, location, "through a mirror"));
    }
out:
    wasm_image_client_free(client);
}

/* Pushes a module to a fresh repository; returns its location through the faulty
 * proxy (same storage as plain). */
static int push_for_faults(wasm_image_client_t *client, const char *tag, char *location, size_t size, char *repo,
                           size_t repo_size) {
    wasm_image_image_t *built = build_module("oci");
    wasm_image_error_t *err;
    char plain[512];
    if (!built) return -1;
    wi_unique_repo(repo, repo_size, tag);
    snprintf(plain, sizeof plain, "%s/%s:v1", wi_env("WI_PLAIN"), repo);
    snprintf(location, size, "%s/%s:v1", wi_env("WI_FAULTY"), repo);
    err = wasm_image_push(client, built, plain, NULL, NULL);
    wasm_image_image_free(built);
    if (err) {
        fprintf(stderr, "    push: %s\n", wasm_image_error_message(err));
        wasm_image_error_free(err);
        return -1;
    }
    return 0;
}

struct canceller {
    wasm_image_cancel_token_t *token;
    unsigned delay_ms;
};

static void *cancel_later(void *arg) {
    struct canceller *c = arg;
    wi_sleep_ms(c->delay_ms);
    wasm_image_error_free(wasm_image_cancel_token_cancel(c->token));
    return NULL;
}

static void test_registry_cancel_from_another_thread(void) {
    wasm_image_client_t *client = NULL;
    wasm_image_call_options_t *call = NULL;
    wasm_image_cancel_token_t *token = NULL;
    wasm_image_image_t *image = NULL;
    char location[512], repo[128] = "", rule[512];
    struct canceller canceller;
    pthread_t thread;
    double started, took;
    SKIP_UNLESS_REGISTRY();
    if (!wi_env("WI_FAULTY_CONTROL")) {
        test_skipped = "no fault proxy";
        return;
    }
    call = wasm_image_call_options_new();
    token = wasm_image_cancel_token_new();
    client = registry_client(NULL);
    REQUIRE(client != NULL && push_for_faults(client, "cancel", location, sizeof location, repo, sizeof repo) == 0);
    /* The module download stalls for 20 s after its first bytes. */
    snprintf(rule, sizeof rule,
             "[{\"match\":\"/v2/%s/blobs/\",\"method\":\"GET\",\"action\":\"stall\",\"seconds\":20,\"times\":-1}]", repo);
    REQUIRE(wi_http("POST", wi_env("WI_FAULTY_CONTROL"), rule) == 200);
    OK(wasm_image_call_options_set_cancel_token(call, token));
    canceller.token = token;
    canceller.delay_ms = 500;
    started = wi_now();
    REQUIRE(pthread_create(&thread, NULL, cancel_later, &canceller) == 0);
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_CANCELLED, wasm_image_pull(client, location, call, &image));
    took = wi_now() - started;
    pthread_join(thread, NULL);
    if (took > 5.0) FAIL_AT("cancellation took %.1f s", took);
    CHECK(image == NULL);
out:
    if (repo[0]) {
        char clear[600];
        snprintf(clear, sizeof clear, "%s?match=/v2/%s/blobs/", wi_env("WI_FAULTY_CONTROL"), repo);
        wi_http("DELETE", clear, NULL);
    }
    wasm_image_call_options_free(call);
    wasm_image_cancel_token_free(token);
    wasm_image_client_free(client);
}

static void test_registry_read_timeout(void) {
    wasm_image_client_options_t *options = NULL;
    wasm_image_client_t *client = NULL, *pusher = NULL;
    wasm_image_image_t *image = NULL;
    char location[512], repo[128], rule[512];
    SKIP_UNLESS_REGISTRY();
    if (!wi_env("WI_FAULTY_CONTROL")) {
        test_skipped = "no fault proxy";
        return;
    }
    options = wasm_image_client_options_new();
    pusher = registry_client(NULL);
    REQUIRE(pusher != NULL && push_for_faults(pusher, "timeout", location, sizeof location, repo, sizeof repo) == 0);
    snprintf(rule, sizeof rule,
             "[{\"match\":\"/v2/%s/blobs/\",\"method\":\"GET\",\"action\":\"stall\",\"seconds\":10,\"times\":-1}]", repo);
    REQUIRE(wi_http("POST", wi_env("WI_FAULTY_CONTROL"), rule) == 200);
    OK(wasm_image_client_options_set_read_timeout_ms(options, 700));
    OK(wasm_image_client_options_set_max_retries(options, 0));
    client = registry_client(options);
    REQUIRE(client != NULL);
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_TIMEOUT, wasm_image_pull(client, location, NULL, &image));
out:
    wasm_image_client_options_free(options);
    wasm_image_client_free(client);
    wasm_image_client_free(pusher);
}

/* A blob that stalls well within the read timeout: only the call timeout ends the call. */
static void test_registry_call_timeout(void) {
    wasm_image_client_options_t *options = NULL;
    wasm_image_client_t *client = NULL, *pusher = NULL;
    wasm_image_image_t *image = NULL;
    wasm_image_error_t *err = NULL;
    char location[512], repo[128], rule[512];
    SKIP_UNLESS_REGISTRY();
    if (!wi_env("WI_FAULTY_CONTROL")) {
        test_skipped = "no fault proxy";
        return;
    }
    options = wasm_image_client_options_new();
    pusher = registry_client(NULL);
    REQUIRE(pusher != NULL && push_for_faults(pusher, "calltimeout", location, sizeof location, repo, sizeof repo) == 0);
    snprintf(rule, sizeof rule,
             "[{\"match\":\"/v2/%s/blobs/\",\"method\":\"GET\",\"action\":\"stall\",\"seconds\":30,\"times\":-1}]", repo);
    REQUIRE(wi_http("POST", wi_env("WI_FAULTY_CONTROL"), rule) == 200);
    OK(wasm_image_client_options_set_read_timeout_ms(options, 25000));
    OK(wasm_image_client_options_set_call_timeout_ms(options, 1500));
    OK(wasm_image_client_options_set_max_retries(options, 0));
    client = registry_client(options);
    REQUIRE(client != NULL);
    err = wasm_image_pull(client, location, NULL, &image);
    CHECK(wasm_image_error_kind(err) == WASM_IMAGE_ERROR_KIND_TIMEOUT);
    CHECK(err != NULL && strstr(wasm_image_error_message(err), "time limit") != NULL);
    wasm_image_error_free(err);
out:
    wasm_image_client_options_free(options);
    wasm_image_client_free(client);
    wasm_image_client_free(pusher);
}

static void test_registry_progress_on_calling_thread(void) {
    wasm_image_client_t *client = NULL;
    wasm_image_call_options_t *call = NULL;
    wasm_image_image_t *built = NULL, *pulled = NULL;
    struct progress_seen seen;
    char location[512], repo[128];
    SKIP_UNLESS_REGISTRY();
    call = wasm_image_call_options_new();
    client = registry_client(NULL);
    built = build_module("compat");
    REQUIRE(client != NULL && built != NULL);
    wi_unique_repo(repo, sizeof repo, "progress");
    snprintf(location, sizeof location, "%s/%s:v1", wi_env("WI_PLAIN"), repo);
    memset(&seen, 0, sizeof seen);
    seen.caller = pthread_self();
    OK(wasm_image_call_options_set_progress(call, on_progress, &seen));
    OK(wasm_image_push(client, built, location, call, NULL));
    CHECK(seen.calls > 0);
    CHECK(seen.finished_blobs >= 2); /* config and layer */
    memset(&seen, 0, sizeof seen);
    seen.caller = pthread_self();
    OK(wasm_image_pull(client, location, call, &pulled));
    CHECK(seen.calls > 0);
    CHECK(seen.finished_blobs >= 1);
    CHECK(seen.wrong_thread == 0);
out:
    wasm_image_image_free(built);
    wasm_image_image_free(pulled);
    wasm_image_call_options_free(call);
    wasm_image_client_free(client);
}

struct log_seen {
    pthread_t caller;
    atomic_int records;
    atomic_int on_caller;
    atomic_int pulled_record;
};

static void on_log(void *user_data, const wasm_image_log_record_t *record) {
    struct log_seen *seen = user_data;
    atomic_fetch_add(&seen->records, 1);
    if (pthread_equal(seen->caller, pthread_self()))
        atomic_fetch_add(&seen->on_caller, 1);
    else
        fprintf(stderr, "    log record on another thread: %s: %s\n", record->target, record->message);
    if (record->level <= WASM_IMAGE_LOG_LEVEL_INFO && strstr(record->message, "pulled")) atomic_fetch_add(&seen->pulled_record, 1);
}

static void test_log_callback(void) {
    char *dir = wi_tempdir("log");
    char location[4200];
    wasm_image_client_t *client = NULL;
    wasm_image_image_t *built = build_module("oci"), *pulled = NULL;
    struct log_seen seen;
    memset(&seen, 0, sizeof seen);
    seen.caller = pthread_self();
    REQUIRE(dir != NULL && built != NULL);
    snprintf(location, sizeof location, "oci:%s/store:plugin", dir);
    OK(wasm_image_client_new(NULL, &client));
    OK(wasm_image_push(client, built, location, NULL, NULL));
    OK(wasm_image_set_log_callback(WASM_IMAGE_LOG_LEVEL_DEBUG, on_log, &seen));
    OK(wasm_image_pull(client, location, NULL, &pulled));
    if (wi_env("WI_PLAIN")) {
        /* A registry pull logs its requests, also those made by the thread that
         * extracts the module: all of them still arrive on this thread. */
        wasm_image_client_t *remote = registry_client(NULL);
        char repo[128];
        wi_unique_repo(repo, sizeof repo, "log");
        snprintf(location, sizeof location, "%s/%s:v1", wi_env("WI_PLAIN"), repo);
        REQUIRE(remote != NULL);
        wasm_image_image_free(pulled);
        pulled = NULL;
        OK(wasm_image_push(remote, built, location, NULL, NULL));
        OK(wasm_image_pull(remote, location, NULL, &pulled));
        wasm_image_client_free(remote);
    }
    OK(wasm_image_set_log_callback(WASM_IMAGE_LOG_LEVEL_DEBUG, NULL, NULL));
    CHECK(atomic_load(&seen.records) > 0);
    CHECK(atomic_load(&seen.pulled_record) == (wi_env("WI_PLAIN") ? 2 : 1));
    if (atomic_load(&seen.on_caller) != atomic_load(&seen.records))
        FAIL_AT("%d of %d log records arrived on another thread", atomic_load(&seen.records) - atomic_load(&seen.on_caller),
                atomic_load(&seen.records));
out:
    wasm_image_set_log_callback(WASM_IMAGE_LOG_LEVEL_ERROR, NULL, NULL);
    wasm_image_image_free(built);
    wasm_image_image_free(pulled);
    wasm_image_client_free(client);
    if (dir) wi_remove_tree(dir);
    free(dir);
}

/* A callback runs inside the library's call: a blocking call made from it is refused with
 * INVALID_ARGUMENT instead of deadlocking or aborting. */
struct reentry {
    const wasm_image_client_t *client;
    const char *location;
    int calls;
    wasm_image_error_kind_t kind;
};

static void on_progress_reenter(void *user_data, const wasm_image_progress_t *progress) {
    struct reentry *r = user_data;
    wasm_image_image_t *image = NULL;
    wasm_image_error_t *err;
    (void)progress;
    if (r->calls++) return;
    err = wasm_image_pull(r->client, r->location, NULL, &image);
    r->kind = wasm_image_error_kind(err);
    wasm_image_error_free(err);
    wasm_image_image_free(image);
}

static void test_blocking_calls_from_a_callback_are_refused(void) {
    char *dir = wi_tempdir("reenter");
    char location[4200];
    wasm_image_client_t *client = NULL;
    wasm_image_image_t *built = build_module("oci");
    wasm_image_call_options_t *call = wasm_image_call_options_new();
    struct reentry r;
    REQUIRE(dir != NULL && built != NULL);
    snprintf(location, sizeof location, "oci:%s/store:plugin", dir);
    OK(wasm_image_client_new(NULL, &client));
    r.client = client;
    r.location = location;
    r.calls = 0;
    r.kind = WASM_IMAGE_ERROR_KIND_NONE;
    OK(wasm_image_call_options_set_progress(call, on_progress_reenter, &r));
    OK(wasm_image_push(client, built, location, call, NULL));
    CHECK(r.calls > 0);
    CHECK(r.kind == WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT);
out:
    wasm_image_call_options_free(call);
    wasm_image_image_free(built);
    wasm_image_client_free(client);
    if (dir) wi_remove_tree(dir);
    free(dir);
}

/* Many threads share one client: each pulls from the registry (or a layout) a few times. */
struct worker {
    const wasm_image_client_t *client;
    const char *location;
    const char *expected_module_digest;
    int rounds;
    int failures;
    char first_error[256];
};

static void *pull_worker(void *arg) {
    struct worker *w = arg;
    for (int i = 0; i < w->rounds; i++) {
        wasm_image_image_t *image = NULL;
        wasm_image_error_t *err = wasm_image_pull(w->client, w->location, NULL, &image);
        if (err || strcmp(wasm_image_image_module_digest(image), w->expected_module_digest) != 0) {
            if (!w->failures)
                snprintf(w->first_error, sizeof w->first_error, "%s: %s", wasm_image_error_name(err),
                         err ? wasm_image_error_message(err) : "wrong module digest");
            w->failures++;
        }
        wasm_image_error_free(err);
        wasm_image_image_free(image);
    }
    return NULL;
}

static void test_many_threads_share_a_client(void) {
    enum { THREADS = 8 };
    char *dir = wi_tempdir("threads");
    char layout[4200];
    const char *location;
    wasm_image_client_t *client = NULL;
    wasm_image_image_t *built = build_module("oci");
    struct worker workers[THREADS];
    pthread_t threads[THREADS];
    int rounds = wi_env("WI_QUICK") ? 2 : 6;
    REQUIRE(dir != NULL && built != NULL);
    client = registry_client(NULL);
    REQUIRE(client != NULL);
    if (wi_env("WI_PLAIN")) {
        char repo[128];
        static char remote[512];
        wi_unique_repo(repo, sizeof repo, "threads");
        snprintf(remote, sizeof remote, "%s/%s:v1", wi_env("WI_PLAIN"), repo);
        location = remote;
    } else {
        snprintf(layout, sizeof layout, "oci:%s/store:plugin", dir);
        location = layout;
    }
    OK(wasm_image_push(client, built, location, NULL, NULL));
    for (int i = 0; i < THREADS; i++) {
        workers[i].client = client;
        workers[i].location = location;
        workers[i].expected_module_digest = wasm_image_image_module_digest(built);
        workers[i].rounds = rounds;
        workers[i].failures = 0;
        workers[i].first_error[0] = 0;
        REQUIRE(pthread_create(&threads[i], NULL, pull_worker, &workers[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        if (workers[i].failures) FAIL_AT("thread %d: %d failures, first: %s", i, workers[i].failures, workers[i].first_error);
    }
out:
    wasm_image_image_free(built);
    wasm_image_client_free(client);
    if (dir) wi_remove_tree(dir);
    free(dir);
}

/* Each signal's disposition before the first call into the library: what the process
 * inherited (`nohup` leaves SIGHUP ignored, say) is not the library's doing. */
static struct sigaction signals_at_start[32];

static void note_signals_at_start(void) {
    for (int sig = 1; sig < 32; sig++) sigaction(sig, NULL, &signals_at_start[sig]);
}

/* Runs last, after every other test has started the library's threads and connections:
 * no signal disposition may have changed (Go, for one, needs its own handlers alone). */
static void test_no_signal_handler_was_installed(void) {
#if defined(__SANITIZE_ADDRESS__)
    test_skipped = "AddressSanitizer installs handlers of its own";
#else
    for (int sig = 1; sig < 32; sig++) {
        struct sigaction current;
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        if (sigaction(sig, NULL, &current) != 0) continue;
        const struct sigaction *before = &signals_at_start[sig];
        if ((current.sa_flags & SA_SIGINFO) != (before->sa_flags & SA_SIGINFO) ||
            current.sa_handler != before->sa_handler)
            FAIL_AT("signal %d (%s) has a handler", sig, strsignal(sig));
    }
#endif
}

/* ---------------------------------------------------------------------- the runner -- */

struct test {
    const char *name;
    void (*run)(void);
};

/* ------------------------------------------------------------- control-plane cache -- */

/* A client whose fetches go through `cache` (and which reaches the test bed's plain
 * registries when there is one). */
static wasm_image_client_t *cache_client(wasm_image_cache_t *cache) {
    wasm_image_client_options_t *options = wasm_image_client_options_new();
    wasm_image_client_t *client = NULL;
    wasm_image_error_t *err = wasm_image_client_options_set_cache(options, cache);
    if (err) {
        fprintf(stderr, "    set_cache: %s\n", wasm_image_error_message(err));
        wasm_image_error_free(err);
    } else if (wi_env("WI_PLAIN")) {
        client = registry_client(options);
    } else if ((err = wasm_image_client_new(options, &client)) != NULL) {
        fprintf(stderr, "    client: %s\n", wasm_image_error_message(err));
        wasm_image_error_free(err);
    }
    wasm_image_client_options_free(options);
    return client;
}

static wasm_image_cache_t *open_cache(const char *dir, int64_t max_bytes) {
    wasm_image_cache_options_t *options = wasm_image_cache_options_new();
    wasm_image_cache_t *cache = NULL;
    wasm_image_error_t *err = wasm_image_cache_options_set_dir(options, dir);
    if (!err && max_bytes >= 0) err = wasm_image_cache_options_set_max_bytes(options, (uint64_t)max_bytes);
    if (!err) err = wasm_image_cache_open(options, &cache);
    if (err) {
        fprintf(stderr, "    cache: %s: %s\n", wasm_image_error_name(err), wasm_image_error_message(err));
        wasm_image_error_free(err);
    }
    wasm_image_cache_options_free(options);
    return cache;
}

static void test_cache_fetch_file_lease_and_gc(void) {
    char *dir = wi_tempdir("cache");
    char module_path[4200], cache_dir[4200], location[4300];
    wasm_image_cache_t *cache = NULL;
    wasm_image_client_t *client = NULL;
    wasm_image_fetch_entry_t *entry = NULL, *again = NULL;
    wasm_image_fetch_options_t *fetch = wasm_image_fetch_options_new();
    wasm_image_cache_entries_t *list = NULL;
    wasm_image_cache_stats_t stats;
    wasm_image_gc_report_t report;
    uint64_t zero = 0, checked = 0, dropped = 0;
    size_t len = 0;
    unsigned char *data = NULL;
    char expected[80];
    REQUIRE(dir != NULL);
    snprintf(module_path, sizeof module_path, "%s/plugin.wasm", dir);
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", dir);
    snprintf(location, sizeof location, "file://%s", module_path);
    REQUIRE(wi_write_file(module_path, WI_MODULE, WI_MODULE_LEN) == 0);
    cache = open_cache(cache_dir, -1);
    REQUIRE(cache != NULL);
    CHECK_STR(wasm_image_cache_dir(cache), cache_dir);
    client = cache_client(cache);
    REQUIRE(client != NULL);

    OK(wasm_image_fetch(client, location, NULL, NULL, &entry));
    data = wi_read_file(wasm_image_fetch_entry_path(entry), &len);
    CHECK(data && len == WI_MODULE_LEN && memcmp(data, WI_MODULE, len) == 0);
    CHECK(wasm_image_fetch_entry_size(entry) == WI_MODULE_LEN);
    CHECK(wasm_image_fetch_entry_manifest_digest(entry) == NULL);
    CHECK(wasm_image_fetch_entry_variant(entry) == NULL);
    CHECK(!wasm_image_fetch_entry_stale(entry));
    snprintf(expected, sizeof expected, "%s", wasm_image_fetch_entry_module_digest(entry) + strlen("sha256:"));

    /* With the digest given (bare hex, as Istio writes it), a hit even under "never". */
    OK(wasm_image_fetch_options_set_policy(fetch, "never"));
    OK(wasm_image_fetch_options_set_expected_digest(fetch, expected));
    OK(wasm_image_fetch(client, location, fetch, NULL, &again));
    CHECK_STR(wasm_image_fetch_entry_path(again), wasm_image_fetch_entry_path(entry));
    OK(wasm_image_cache_stats(cache, &stats));
    CHECK(stats.misses == 1 && stats.hits == 1 && stats.bytes_downloaded == WI_MODULE_LEN);

    /* Leased: gc down to 0 bytes keeps it; released: gone. */
    OK(wasm_image_cache_entries(cache, &list));
    CHECK(wasm_image_cache_entries_count(list) == 1);
    CHECK(wasm_image_cache_entries_leased(list, 0));
    CHECK(wasm_image_cache_entries_size(list, 0) == WI_MODULE_LEN);
    CHECK(wasm_image_cache_entries_module_digest(list, 1) == NULL);
    OK(wasm_image_cache_gc(cache, &zero, NULL, &report));
    CHECK(report.removed == 0 && report.kept_leased == 1);
    OK(wasm_image_cache_verify(cache, &checked, &dropped));
    CHECK(checked == 1 && dropped == 0);
    wasm_image_fetch_entry_free(entry);
    wasm_image_fetch_entry_free(again);
    entry = again = NULL;
    OK(wasm_image_cache_gc(cache, &zero, NULL, &report));
    CHECK(report.removed == 1 && report.freed_bytes == WI_MODULE_LEN);

    /* Bad input: typed errors, outputs cleared. */
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_fetch_options_set_policy(fetch, "sometimes"));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_fetch_options_set_expected_digest(fetch, "sha256:12"));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_NOT_FOUND, wasm_image_fetch(client, location, fetch, NULL, &entry));
    CHECK(entry == NULL);
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_REFERENCE, wasm_image_fetch(client, "file://host/x", NULL, NULL, &entry));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_fetch(client, NULL, NULL, NULL, &entry));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_cache_open(NULL, NULL));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT, wasm_image_cache_gc(NULL, NULL, NULL, NULL));
    CHECK(wasm_image_fetch_entry_path(NULL) == NULL);
out:
    free(data);
    wasm_image_cache_entries_free(list);
    wasm_image_fetch_entry_free(entry);
    wasm_image_fetch_entry_free(again);
    wasm_image_fetch_options_free(fetch);
    wasm_image_client_free(client);
    wasm_image_cache_free(cache);
    if (dir) wi_remove_tree(dir);
    free(dir);
}

static void test_registry_cache_pinned_hits_make_no_requests(void) {
    char repo[128], location[512], pinned[700], url[512], *dir = NULL, *digest = NULL;
    wasm_image_cache_t *cache = NULL;
    wasm_image_client_t *client = NULL;
    wasm_image_image_t *built = NULL;
    wasm_image_fetch_entry_t *entry = NULL;
    wasm_image_fetch_options_t *fetch = wasm_image_fetch_options_new();
    int rule_added = 0;
    repo[0] = 0;
    if (!wi_env("WI_PLAIN")) wasm_image_fetch_options_free(fetch);
    SKIP_UNLESS_REGISTRY();
    dir = wi_tempdir("cache-registry");
    REQUIRE(dir != NULL);
    cache = open_cache(dir, -1);
    REQUIRE(cache != NULL);
    client = cache_client(cache);
    REQUIRE(client != NULL);
    built = build_module("oci");
    REQUIRE(built != NULL);
    wi_unique_repo(repo, sizeof repo, "cache");
    snprintf(location, sizeof location, "%s/%s:v1", wi_env("WI_PLAIN"), repo);
    OK(wasm_image_push(client, built, location, NULL, &digest));
    snprintf(pinned, sizeof pinned, "oci://%s/%s@%s", wi_env("WI_FAULTY"), repo, digest);
    OK(wasm_image_fetch_options_set_expected_digest(fetch, digest));
    OK(wasm_image_fetch(client, pinned, fetch, NULL, &entry));
    CHECK_STR(wasm_image_fetch_entry_manifest_digest(entry), digest);
    CHECK_STR(wasm_image_fetch_entry_variant(entry), "oci");
    CHECK(wasm_image_fetch_entry_runtime_config_json(entry) != NULL);
    wasm_image_fetch_entry_free(entry);
    entry = NULL;
    /* Every further request to this repository fails: pinned hits must not ask. */
    {
        char rule[512];
        snprintf(rule, sizeof rule, "{\"match\": \"%s\", \"action\": \"status\", \"status\": 500, \"times\": -1}", repo);
        REQUIRE(wi_http("POST", wi_env("WI_FAULTY_CONTROL"), rule) == 200);
        rule_added = 1;
        for (int i = 0; i < 3; i++) {
            OK(wasm_image_fetch(client, pinned, fetch, NULL, &entry));
            wasm_image_fetch_entry_free(entry);
            entry = NULL;
        }
    }
    OK(wasm_image_fetch_options_set_expected_digest(fetch, "sha256:0000000000000000000000000000000000000000000000000000000000000000"));
    FAILS_WITH(WASM_IMAGE_ERROR_KIND_DIGEST_MISMATCH, wasm_image_fetch(client, pinned, fetch, NULL, &entry));
out:
    if (rule_added) {
        snprintf(url, sizeof url, "%s?match=%s", wi_env("WI_FAULTY_CONTROL"), repo);
        CHECK(wi_http("DELETE", url, NULL) == 200);
    }
    wasm_image_string_free(digest);
    wasm_image_image_free(built);
    wasm_image_fetch_entry_free(entry);
    wasm_image_fetch_options_free(fetch);
    wasm_image_client_free(client);
    wasm_image_cache_free(cache);
    if (dir) wi_remove_tree(dir);
    free(dir);
}

static const struct test TESTS[] = {
    {"version", test_version},
    {"error_kinds_have_their_contract_numbers", test_error_kinds_have_their_contract_numbers},
    {"invalid_arguments_never_crash", test_invalid_arguments_never_crash},
    {"freed_handles_are_detected", test_freed_handles_are_detected},
    {"build_and_read_every_field", test_build_and_read_every_field},
    {"build_compat_docker_and_refusals", test_build_compat_docker_and_refusals},
    {"layout_round_trip", test_layout_round_trip},
    {"signing_and_verification_policy", test_signing_and_verification_policy},
    {"keyless_signature_from_a_test_sigstore", test_keyless_signature_from_a_test_sigstore},
    {"layout_errors", test_layout_errors},
    {"client_options_accept_every_setting", test_client_options_accept_every_setting},
    {"log_callback", test_log_callback},
    {"blocking_calls_from_a_callback_are_refused", test_blocking_calls_from_a_callback_are_refused},
    {"many_threads_share_a_client", test_many_threads_share_a_client},
    {"registry_push_pull_both_variants", test_registry_push_pull_both_variants},
    {"registry_pull_buildah_fixtures_and_copy_to_layout", test_registry_pull_buildah_fixtures_and_copy_to_layout},
    {"registry_error_kinds", test_registry_error_kinds},
    {"registry_auth_forms_and_mirrors", test_registry_auth_forms_and_mirrors},
    {"registry_cancel_from_another_thread", test_registry_cancel_from_another_thread},
    {"registry_read_timeout", test_registry_read_timeout},
    {"registry_call_timeout", test_registry_call_timeout},
    {"registry_progress_on_calling_thread", test_registry_progress_on_calling_thread},
    {"cache_fetch_file_lease_and_gc", test_cache_fetch_file_lease_and_gc},
    {"registry_cache_pinned_hits_make_no_requests", test_registry_cache_pinned_hits_make_no_requests},
    {"no_signal_handler_was_installed", test_no_signal_handler_was_installed},
};

static int make_layout(const char *dir) {
    char location[4200], path[4200];
    wasm_image_client_t *client = NULL;
    wasm_image_image_t *image = build_module("oci");
    wasm_image_error_t *err = image ? wasm_image_client_new(NULL, &client) : NULL;
    if (!image) return 1;
    snprintf(location, sizeof location, "oci:%s/layout:plugin", dir);
    if (!err) err = wasm_image_push(client, image, location, NULL, NULL);
    if (err) fprintf(stderr, "%s: %s\n", wasm_image_error_name(err), wasm_image_error_message(err));
    snprintf(path, sizeof path, "%s/expected.wasm", dir);
    if (!err && wi_write_file(path, WI_MODULE, WI_MODULE_LEN) != 0) return 1;
    wasm_image_image_free(image);
    wasm_image_client_free(client);
    wasm_image_error_free(err);
    return err != NULL;
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0, skipped = 0;
    note_signals_at_start();
    if (argc == 3 && strcmp(argv[1], "--make-layout") == 0) return make_layout(argv[2]);
    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++) {
        int selected = argc < 2;
        for (int a = 1; a < argc; a++)
            if (strstr(TESTS[i].name, argv[a])) selected = 1;
        if (!selected) continue;
        test_failed = 0;
        test_skipped = NULL;
        double started = wi_now();
        TESTS[i].run();
        if (test_failed) {
            failed++;
            printf("FAIL %s (%.2f s)\n", TESTS[i].name, wi_now() - started);
        } else if (test_skipped) {
            skipped++;
            printf("skip %s: %s\n", TESTS[i].name, test_skipped);
        } else {
            passed++;
            printf("ok   %s (%.2f s)\n", TESTS[i].name, wi_now() - started);
        }
        fflush(stdout);
    }
    printf("test_c: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
