/* Warm cache hits through wasm-image's C API, timed inside the process: run by the
 * benchmark's cache family (bench/harness/cases/cache.py), which builds it as it builds
 * bench/pull_c.c.
 *
 *     cache_c CACHE_DIR LOCATION INSECURE_HOST N TAG_TTL_S
 *
 * Opens the cache (tags trusted for TAG_TTL_S seconds), makes one fetch (timed apart as
 * first_s; a hit when the cache was warmed before), then N fetches of LOCATION, each
 * timed alone (clock_gettime(CLOCK_MONOTONIC) around wasm_image_fetch and
 * wasm_image_fetch_entry_free, the lease's whole life). Prints one JSON line
 * {"op_s": median seconds per call, "first_s": …, "median_us": …, "p90_us": …,
 * "min_us": …, "n": N}. Exit 1 with the error's kind and message on failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s CACHE_DIR LOCATION INSECURE_HOST N TAG_TTL_S\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *location = argv[2], *insecure = argv[3];
    long n = strtol(argv[4], NULL, 10);
    long tag_ttl_s = strtol(argv[5], NULL, 10);
    if (n <= 0 || tag_ttl_s <= 0) return 2;

    wasm_image_cache_options_t *copts = wasm_image_cache_options_new();
    wasm_image_error_t *err = wasm_image_cache_options_set_dir(copts, dir);
    if (!err) err = wasm_image_cache_options_set_tag_ttl_ms(copts, (uint64_t)tag_ttl_s * 1000);
    if (err) return fail("cache options", err);
    wasm_image_cache_t *cache = NULL;
    err = wasm_image_cache_open(copts, &cache);
    wasm_image_cache_options_free(copts);
    if (err) return fail("cache", err);

    wasm_image_client_options_t *opts = wasm_image_client_options_new();
    err = wasm_image_client_options_add_insecure_registry(opts, insecure);
    if (!err) err = wasm_image_client_options_set_use_config_files(opts, false);
    if (!err) err = wasm_image_client_options_set_cache(opts, cache);
    if (err) return fail("client options", err);
    wasm_image_client_t *client = NULL;
    err = wasm_image_client_new(opts, &client);
    wasm_image_client_options_free(opts);
    if (err) return fail("client", err);

    wasm_image_fetch_entry_t *entry = NULL;
    double t0 = now();
    err = wasm_image_fetch(client, location, NULL, NULL, &entry);
    if (err) return fail("first fetch", err);
    double first = now() - t0;
    wasm_image_fetch_entry_free(entry);

    double *took = malloc(sizeof(double) * (size_t)n);
    if (!took) return 1;
    for (long i = 0; i < n; i++) {
        double t = now();
        err = wasm_image_fetch(client, location, NULL, NULL, &entry);
        if (err) return fail("fetch", err);
        wasm_image_fetch_entry_free(entry);
        took[i] = (now() - t) * 1e6;
    }
    qsort(took, (size_t)n, sizeof(double), by_value);
    printf("{\"op_s\": %.9f, \"first_s\": %.6f, \"median_us\": %.2f, \"p90_us\": %.2f, \"min_us\": %.2f, \"n\": %ld}\n",
           took[n / 2] / 1e6, first, took[n / 2], took[(n * 9) / 10], took[0], n);
    free(took);
    wasm_image_client_free(client);
    wasm_image_cache_free(cache);
    return 0;
}
