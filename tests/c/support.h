/* Helpers shared by the C and C++ tests: the test bed's addresses (exported by run.sh
 * from testbed.json), the fault proxy's control API, temporary directories, files. */
#ifndef WI_TEST_SUPPORT_H
#define WI_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A tiny valid core module that exports proxy_abi_version_0_2_1 and one function. */
extern const unsigned char WI_MODULE[];
extern const size_t WI_MODULE_LEN;

/* The environment variable, or NULL when unset or empty. Registry tests skip when
 * WI_PLAIN (the plain registry's HOST:PORT) is unset. */
const char *wi_env(const char *name);

/* Sends an HTTP/1.0 request with an optional JSON body to a URL "http://HOST:PORT/PATH"
 * (the fault proxy's control API); returns the status, or -1. */
int wi_http(const char *method, const char *url, const char *json_body);

/* A new empty directory (mkdtemp) under $WI_TMP or /tmp; free() the result. */
char *wi_tempdir(const char *tag);
/* Removes a directory tree; 0 on success. */
int wi_remove_tree(const char *path);

/* Reads a whole file (malloc'd, free() it) or NULL. */
unsigned char *wi_read_file(const char *path, size_t *len);
int wi_write_file(const char *path, const void *data, size_t len);

/* The path of a blob in an OCI layout: DIR/blobs/ALG/HEX for "ALG:HEX". free() it. */
char *wi_blob_path(const char *layout_dir, const char *digest);

/* A port on 127.0.0.1 where nothing listens (bound, then closed). */
int wi_closed_port(void);

/* A repository name no other test (or concurrent test program) uses. */
void wi_unique_repo(char *out, size_t size, const char *tag);

/* Standard base64 of `len` bytes into `out` (NUL-terminated; 4 * ((len + 2) / 3) + 1
 * bytes needed). */
void wi_base64(const void *data, size_t len, char *out);

/* Seconds on a monotonic clock. */
double wi_now(void);
void wi_sleep_ms(unsigned ms);

#ifdef __cplusplus
}
#endif

#endif
