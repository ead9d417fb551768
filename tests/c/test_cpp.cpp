// The C API from C++ (GoogleTest): RAII around the handles, std::thread for the
// concurrency contract. Registry tests skip when run.sh did not export the test bed.
#include <wasm_image.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support.h"

namespace {

// One deleter per handle type: the C++ way to never miss a _free.
struct Free {
    void operator()(wasm_image_error_t *p) const { wasm_image_error_free(p); }
    void operator()(wasm_image_client_t *p) const { wasm_image_client_free(p); }
    void operator()(wasm_image_client_options_t *p) const { wasm_image_client_options_free(p); }
    void operator()(wasm_image_image_t *p) const { wasm_image_image_free(p); }
    void operator()(wasm_image_build_options_t *p) const { wasm_image_build_options_free(p); }
    void operator()(wasm_image_call_options_t *p) const { wasm_image_call_options_free(p); }
    void operator()(wasm_image_cancel_token_t *p) const { wasm_image_cancel_token_free(p); }
    void operator()(char *p) const { wasm_image_string_free(p); }
};
template <typename T> using Owned = std::unique_ptr<T, Free>;
using Error = Owned<wasm_image_error_t>;

// Turns an error object into an exception carrying its kind, the way a C++ wrapper would.
struct WasmImageError : std::runtime_error {
    wasm_image_error_kind_t kind;
    explicit WasmImageError(Error e)
        : std::runtime_error(std::string(wasm_image_error_name(e.get())) + ": " + wasm_image_error_message(e.get())),
          kind(wasm_image_error_kind(e.get())) {}
};

void check(wasm_image_error_t *raw) {
    Error e(raw);
    if (e) throw WasmImageError(std::move(e));
}

wasm_image_error_kind_t kind_of(wasm_image_error_t *raw) {
    Error e(raw);
    return wasm_image_error_kind(e.get());
}

std::string tempdir(const char *tag) {
    char *dir = wi_tempdir(tag);
    if (!dir) throw std::runtime_error("mkdtemp");
    std::string s(dir);
    free(dir);
    return s;
}

struct TempDir {
    std::string path;
    explicit TempDir(const char *tag) : path(tempdir(tag)) {}
    ~TempDir() { wi_remove_tree(path.c_str()); }
};

Owned<wasm_image_client_t> make_client() {
    Owned<wasm_image_client_options_t> options(wasm_image_client_options_new());
    for (const char *name : {"WI_PLAIN", "WI_BASIC", "WI_FAULTY"})
        if (wi_env(name)) check(wasm_image_client_options_add_insecure_registry(options.get(), wi_env(name)));
    check(wasm_image_client_options_set_use_config_files(options.get(), false));
    wasm_image_client_t *client = nullptr;
    check(wasm_image_client_new(options.get(), &client));
    return Owned<wasm_image_client_t>(client);
}

Owned<wasm_image_image_t> build(const char *variant) {
    Owned<wasm_image_build_options_t> options(wasm_image_build_options_new());
    check(wasm_image_build_options_set_variant(options.get(), variant));
    wasm_image_image_t *image = nullptr;
    check(wasm_image_build(WI_MODULE, WI_MODULE_LEN, options.get(), &image));
    return Owned<wasm_image_image_t>(image);
}

Owned<wasm_image_image_t> pull(const wasm_image_client_t *client, const std::string &location,
                               const wasm_image_call_options_t *call = nullptr) {
    wasm_image_image_t *image = nullptr;
    check(wasm_image_pull(client, location.c_str(), call, &image));
    return Owned<wasm_image_image_t>(image);
}

std::string push(const wasm_image_client_t *client, const wasm_image_image_t *image, const std::string &location) {
    char *digest = nullptr;
    check(wasm_image_push(client, image, location.c_str(), nullptr, &digest));
    Owned<char> owned(digest);
    return std::string(owned.get());
}

std::string unique_repo(const char *tag) {
    char repo[128];
    wi_unique_repo(repo, sizeof repo, tag);
    return repo;
}

}  // namespace

TEST(Header, VersionAndEnumsFromCpp) {
    EXPECT_STREQ(wasm_image_version(), WASM_IMAGE_VERSION_STRING);
    static_assert(sizeof(wasm_image_error_kind_t) == 4, "the kind is a uint32_t");
    EXPECT_EQ(static_cast<uint32_t>(WASM_IMAGE_ERROR_KIND_CANCELLED), 12u);
    EXPECT_STREQ(wasm_image_error_kind_name(WASM_IMAGE_ERROR_KIND_CANCELLED), "CANCELLED");
}

TEST(Layout, BuildPushPullWithRaii) {
    TempDir dir("cpp-layout");
    auto client = make_client();
    auto built = build("compat");
    const std::string location = "oci:" + dir.path + "/store:plugin";
    const std::string digest = push(client.get(), built.get(), location);
    EXPECT_EQ(digest, wasm_image_image_manifest_digest(built.get()));
    auto pulled = pull(client.get(), location);
    size_t len = 0;
    const uint8_t *module = wasm_image_image_module(pulled.get(), &len);
    ASSERT_EQ(len, WI_MODULE_LEN);
    EXPECT_EQ(0, std::memcmp(module, WI_MODULE, len));
    EXPECT_STREQ(wasm_image_image_variant(pulled.get()), "compat");
}

TEST(Errors, AreObjectsThatOutliveTheThreadThatMadeThem) {
    // No thread-local "last error": an error made on one thread is read on another.
    auto client = make_client();
    Error error;
    std::thread([&] {
        wasm_image_image_t *image = nullptr;
        error.reset(wasm_image_pull(client.get(), "oci:/no/such/layout:tag", nullptr, &image));
    }).join();
    ASSERT_NE(error, nullptr);
    EXPECT_EQ(wasm_image_error_kind(error.get()), WASM_IMAGE_ERROR_KIND_NOT_FOUND);
    EXPECT_NE(std::strstr(wasm_image_error_message(error.get()), "/no/such/layout"), nullptr);
}

TEST(Errors, ThrownAsExceptionsByAWrapper) {
    auto client = make_client();
    try {
        pull(client.get(), "oci:/no/such/layout:tag");
        FAIL() << "expected an exception";
    } catch (const WasmImageError &e) {
        EXPECT_EQ(e.kind, WASM_IMAGE_ERROR_KIND_NOT_FOUND);
        EXPECT_EQ(std::string(e.what()).rfind("NOT_FOUND: ", 0), 0u);
    }
    EXPECT_EQ(kind_of(wasm_image_pull(client.get(), nullptr, nullptr, nullptr)), WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT);
}

TEST(Callbacks, ProgressRunsOnTheCallingThreadAndMayCatchItsOwnExceptions) {
    TempDir dir("cpp-progress");
    auto client = make_client();
    auto built = build("oci");
    struct Seen {
        std::thread::id caller = std::this_thread::get_id();
        int calls = 0, elsewhere = 0;
    } seen;
    Owned<wasm_image_call_options_t> call(wasm_image_call_options_new());
    check(wasm_image_call_options_set_progress(
        call.get(),
        [](void *data, const wasm_image_progress_t *progress) {
            // A callback must not let an exception escape into the library.
            try {
                auto *s = static_cast<Seen *>(data);
                s->calls++;
                if (std::this_thread::get_id() != s->caller) s->elsewhere++;
                if (progress->done > progress->total) throw std::logic_error("more than total");
            } catch (...) {
                std::fprintf(stderr, "progress callback failed\n");
            }
        },
        &seen));
    const std::string location = "oci:" + dir.path + "/store:plugin";
    char *digest = nullptr;
    check(wasm_image_push(client.get(), built.get(), location.c_str(), call.get(), &digest));
    wasm_image_string_free(digest);
    auto pulled = pull(client.get(), location, call.get());
    EXPECT_GT(seen.calls, 0);
    EXPECT_EQ(seen.elsewhere, 0);
}

TEST(Threads, ManyStdThreadsShareOneClient) {
    TempDir dir("cpp-threads");
    auto client = make_client();
    auto built = build("oci");
    std::string location = "oci:" + dir.path + "/store:plugin";
    if (wi_env("WI_PLAIN")) location = std::string(wi_env("WI_PLAIN")) + "/" + unique_repo("cpp-threads") + ":v1";
    push(client.get(), built.get(), location);
    const std::string expected = wasm_image_image_module_digest(built.get());
    std::atomic<int> good{0}, bad{0};
    std::vector<std::thread> threads;
    const int rounds = wi_env("WI_QUICK") ? 2 : 5;
    for (int t = 0; t < 12; t++)
        threads.emplace_back([&] {
            for (int i = 0; i < rounds; i++) {
                try {
                    auto image = pull(client.get(), location);
                    (expected == wasm_image_image_module_digest(image.get()) ? good : bad)++;
                } catch (const std::exception &e) {
                    std::fprintf(stderr, "%s\n", e.what());
                    bad++;
                }
            }
        });
    for (auto &t : threads) t.join();
    EXPECT_EQ(bad.load(), 0);
    EXPECT_EQ(good.load(), 12 * rounds);
}

TEST(Registry, CancelFromAStdThreadReturnsPromptly) {
    if (!wi_env("WI_PLAIN") || !wi_env("WI_FAULTY_CONTROL")) GTEST_SKIP() << "no test bed";
    auto client = make_client();
    auto built = build("oci");
    const std::string repo = unique_repo("cpp-cancel");
    push(client.get(), built.get(), std::string(wi_env("WI_PLAIN")) + "/" + repo + ":v1");
    const std::string rule = "[{\"match\":\"/v2/" + repo +
                             "/blobs/\",\"method\":\"GET\",\"action\":\"stall\",\"seconds\":20,\"times\":-1}]";
    ASSERT_EQ(wi_http("POST", wi_env("WI_FAULTY_CONTROL"), rule.c_str()), 200);

    Owned<wasm_image_cancel_token_t> token(wasm_image_cancel_token_new());
    Owned<wasm_image_call_options_t> call(wasm_image_call_options_new());
    check(wasm_image_call_options_set_cancel_token(call.get(), token.get()));
    const auto started = std::chrono::steady_clock::now();
    std::thread canceller([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(400));
        check(wasm_image_cancel_token_cancel(token.get()));
    });
    wasm_image_image_t *image = nullptr;
    const auto kind =
        kind_of(wasm_image_pull(client.get(), (std::string(wi_env("WI_FAULTY")) + "/" + repo + ":v1").c_str(),
                                call.get(), &image));
    canceller.join();
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_EQ(kind, WASM_IMAGE_ERROR_KIND_CANCELLED);
    EXPECT_EQ(image, nullptr);
    EXPECT_LT(took, std::chrono::seconds(5));
    wi_http("DELETE", (std::string(wi_env("WI_FAULTY_CONTROL")) + "?match=/v2/" + repo + "/blobs/").c_str(), nullptr);
}

TEST(Registry, UnauthorizedThenAuthorizedOnTheBasicAuthRegistry) {
    if (!wi_env("WI_BASIC")) GTEST_SKIP() << "no test bed";
    const std::string location = std::string(wi_env("WI_BASIC")) + "/fixtures/buildah-oci:latest";
    auto anonymous = make_client();
    wasm_image_image_t *image = nullptr;
    EXPECT_EQ(kind_of(wasm_image_pull(anonymous.get(), location.c_str(), nullptr, &image)),
              WASM_IMAGE_ERROR_KIND_UNAUTHORIZED);
    Owned<wasm_image_client_options_t> options(wasm_image_client_options_new());
    check(wasm_image_client_options_add_insecure_registry(options.get(), wi_env("WI_BASIC")));
    check(wasm_image_client_options_set_basic_auth(options.get(), wi_env("WI_BASIC"), wi_env("WI_BASIC_USER"),
                                                   wi_env("WI_BASIC_PASSWORD")));
    wasm_image_client_t *raw = nullptr;
    check(wasm_image_client_new(options.get(), &raw));
    Owned<wasm_image_client_t> authed(raw);
    auto pulled = pull(authed.get(), location);
    if (wi_env("WI_FIXTURE_MODULE_SHA256")) {
        EXPECT_STREQ(wasm_image_image_module_digest(pulled.get()), wi_env("WI_FIXTURE_MODULE_SHA256"));
    }
}
