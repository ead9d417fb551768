/*
 * pull: fetch a Wasm plugin stored as an OCI image and write its module to a file.
 *
 *   pull [--insecure HOST[:PORT]]... LOCATION OUTPUT.wasm
 *
 * LOCATION is any wasm-image location: a registry reference
 * ("ghcr.io/org/filter:v1", "127.0.0.1:5000/filters/add-header@sha256:..."), an OCI
 * layout ("oci:./store:add-header"), or an archive ("oci-archive:filter.tar").
 * --insecure allows plain HTTP to that registry (for a local test registry).
 *
 * Build: cc pull.c $(pkg-config --cflags --libs wasmimage) -o pull
 *    or: find_package(WasmImage) + target_link_libraries(pull WasmImage::wasmimage)
 */
#include <stdio.h>
#include <string.h>

#include <wasm_image.h>

/* Reports an error and frees it. Every fallible call returns NULL or an error object
 * that the caller owns: its kind is stable (switch on it), its message is for people. */
static int report(const char *what, wasm_image_error_t *err) {
    int status = 1;
    fprintf(stderr, "pull: %s: %s: %s\n", what, wasm_image_error_name(err), wasm_image_error_message(err));
    switch (wasm_image_error_kind(err)) {
    case WASM_IMAGE_ERROR_KIND_UNAUTHORIZED:
        fprintf(stderr, "pull: log in with `docker login` (credentials are read from its config)\n");
        break;
    case WASM_IMAGE_ERROR_KIND_NOT_FOUND:
        status = 2;
        break;
    default:
        break;
    }
    wasm_image_error_free(err);
    return status;
}

int main(int argc, char **argv) {
    const char *location = NULL, *output = NULL;
    wasm_image_client_options_t *options = wasm_image_client_options_new();
    wasm_image_client_t *client = NULL;
    wasm_image_image_t *image = NULL;
    wasm_image_error_t *err = NULL;
    int status = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--insecure") == 0 && i + 1 < argc) {
            err = wasm_image_client_options_add_insecure_registry(options, argv[++i]);
            if (err) {
                status = report("--insecure", err);
                goto done;
            }
        } else if (!location) {
            location = argv[i];
        } else if (!output) {
            output = argv[i];
        } else {
            location = NULL; /* too many arguments */
            break;
        }
    }
    if (!location || !output) {
        fprintf(stderr, "usage: %s [--insecure HOST[:PORT]]... LOCATION OUTPUT.wasm\n", argv[0]);
        status = 64;
        goto done;
    }

    /* One client holds the options and the connections; it is thread-safe and meant to
     * be kept and shared. The options are copied into it. */
    err = wasm_image_client_new(options, &client);
    if (err) {
        status = report("client", err);
        goto done;
    }

    /* Streams the module into OUTPUT, verifying every digest on the way; the file only
     * appears once everything checked out. NULL call options: no progress callback, no
     * cancellation token. */
    err = wasm_image_pull_to_file(client, location, output, NULL, &image);
    if (err) {
        status = report(location, err);
        goto done;
    }

    /* Strings borrowed from the image stay valid until wasm_image_image_free. */
    printf("%s\n", location);
    printf("  variant   %s\n", wasm_image_image_variant(image));
    printf("  module    %s (%llu bytes) -> %s\n", wasm_image_image_module_digest(image),
           (unsigned long long)wasm_image_image_module_size(image), output);
    printf("  manifest  %s\n", wasm_image_image_manifest_digest(image));
    if (wasm_image_image_runtime_type(image)) {
        printf("  runtime   %s", wasm_image_image_runtime_type(image));
        for (size_t i = 0; i < wasm_image_image_abi_version_count(image); i++)
            printf("%s%s", i ? ", " : " (ABI ", wasm_image_image_abi_version(image, i));
        printf("%s\n", wasm_image_image_abi_version_count(image) ? ")" : "");
    }

done:
    /* Freeing NULL is fine, so one cleanup path serves every exit. */
    wasm_image_image_free(image);
    wasm_image_client_free(client);
    wasm_image_client_options_free(options);
    return status;
}
