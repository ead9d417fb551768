/* One pull through wasm-image's C API, timed inside the process: run by bench/run.py.
 *
 *     pull_c mem  LOCATION -    INSECURE_HOST   # wasm_image_pull: the module into memory
 *     pull_c file LOCATION PATH INSECURE_HOST   # wasm_image_pull_to_file
 *
 * Prints one JSON line {"op_s": …, "size": …} (op_s: clock_gettime(CLOCK_MONOTONIC)
 * around the pull alone; making the client is reported apart as client_s). Exit 1 with
 * the error's kind and message on failure.
 *
 * Build: gcc -O2 -std=c99 bench/pull_c.c -Iinclude -Ltarget/release \
 *            -Wl,-rpath,target/release -lwasmimage -o pull_c
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "wasm_image.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, wasm_image_error_t *err) {
    fprintf(stderr, "%s: %s: %s\n", what, wasm_image_error_name(err), wasm_image_error_message(err));
    wasm_image_error_free(err);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 5 || (strcmp(argv[1], "mem") != 0 && strcmp(argv[1], "file") != 0)) {
        fprintf(stderr, "usage: %s mem|file LOCATION PATH|- INSECURE_HOST\n", argv[0]);
        return 2;
    }
    int to_file = strcmp(argv[1], "file") == 0;
    const char *location = argv[2], *path = argv[3], *insecure = argv[4];

    double t0 = now();
    wasm_image_client_options_t *opts = wasm_image_client_options_new();
    wasm_image_error_t *err = wasm_image_client_options_add_insecure_registry(opts, insecure);
    if (err) return fail("insecure registry", err);
    err = wasm_image_client_options_set_use_config_files(opts, false);
    if (err) return fail("use_config_files", err);
    wasm_image_client_t *client = NULL;
    err = wasm_image_client_new(opts, &client);
    wasm_image_client_options_free(opts);
    if (err) return fail("client", err);

    double t1 = now();
    wasm_image_image_t *image = NULL;
    uint64_t size = 0;
    if (to_file) {
        err = wasm_image_pull_to_file(client, location, path, NULL, &image);
        if (err) return fail("pull_to_file", err);
        size = wasm_image_image_module_size(image);
    } else {
        err = wasm_image_pull(client, location, NULL, &image);
        if (err) return fail("pull", err);
        size_t len = 0;
        const uint8_t *bytes = wasm_image_image_module(image, &len);
        /* touch the borrowed bytes, as a caller handing them to a runtime would */
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < len; i += 4096) sink ^= bytes[i];
        (void)sink;
        size = len;
    }
    double t2 = now();
    printf("{\"op_s\": %.6f, \"client_s\": %.6f, \"size\": %llu, \"variant\": \"%s\"}\n", t2 - t1, t1 - t0,
           (unsigned long long)size, wasm_image_image_variant(image));
    wasm_image_image_free(image);
    wasm_image_client_free(client);
    return 0;
}
