#define _GNU_SOURCE 1
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* (module (func (export "proxy_abi_version_0_2_1"))) */
const unsigned char WI_MODULE[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,             /* magic, version */
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00,                         /* type: () -> () */
    0x03, 0x02, 0x01, 0x00,                                     /* func 0: type 0 */
    0x07, 0x1b, 0x01, 0x17,                                     /* export, 1 entry, 23 bytes */
    'p', 'r', 'o', 'x', 'y', '_', 'a', 'b', 'i', '_', 'v', 'e',
    'r', 's', 'i', 'o', 'n', '_', '0', '_', '2', '_', '1',
    0x00, 0x00,                                                 /* func 0 */
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,                         /* code: empty body */
};
const size_t WI_MODULE_LEN = sizeof WI_MODULE;

const char *wi_env(const char *name) {
    const char *value = getenv(name);
    return value && *value ? value : NULL;
}

int wi_http(const char *method, const char *url, const char *json_body) {
    char host[256];
    int port = 80;
    const char *path;
    const char *rest = strncmp(url, "http://", 7) == 0 ? url + 7 : url;
    const char *slash = strchr(rest, '/');
    const char *colon = strchr(rest, ':');
    size_t host_len;
    path = slash ? slash : "/";
    host_len = (size_t)((colon && (!slash || colon < slash) ? colon : (slash ? slash : rest + strlen(rest))) - rest);
    if (host_len >= sizeof host) return -1;
    memcpy(host, rest, host_len);
    host[host_len] = '\0';
    if (colon && (!slash || colon < slash)) port = atoi(colon + 1);

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &addr.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    size_t body_len = json_body ? strlen(json_body) : 0;
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.0\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     method, path, host, port, body_len);
    if (n < 0 || (size_t)n >= sizeof head || write(fd, head, (size_t)n) != n ||
        (body_len && write(fd, json_body, body_len) != (ssize_t)body_len)) {
        close(fd);
        return -1;
    }
    char reply[64] = {0};
    ssize_t got = 0, r;
    while (got < (ssize_t)sizeof reply - 1 && (r = read(fd, reply + got, sizeof reply - 1 - (size_t)got)) > 0) got += r;
    /* drain the rest so the server is not reset */
    char sink[4096];
    while (read(fd, sink, sizeof sink) > 0) {
    }
    close(fd);
    int status = -1;
    if (sscanf(reply, "HTTP/%*s %d", &status) != 1) return -1;
    return status;
}

char *wi_tempdir(const char *tag) {
    const char *base = wi_env("WI_TMP");
    char *path = malloc(4096);
    if (!path) return NULL;
    snprintf(path, 4096, "%s/wi-%s-XXXXXX", base ? base : "/tmp", tag);
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int wi_remove_tree(const char *path) {
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

unsigned char *wi_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, used = 0, n;
    unsigned char *data = malloc(cap);
    while (data && (n = fread(data + used, 1, cap - used, f)) > 0) {
        used += n;
        if (used == cap) {
            unsigned char *bigger = realloc(data, cap *= 2);
            if (!bigger) {
                free(data);
                data = NULL;
            }
            data = bigger;
        }
    }
    fclose(f);
    if (data && len) *len = used;
    return data;
}

int wi_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && n == len) ? 0 : -1;
}

char *wi_blob_path(const char *layout_dir, const char *digest) {
    const char *colon = strchr(digest, ':');
    if (!colon) return NULL;
    char *path = malloc(4096);
    if (!path) return NULL;
    snprintf(path, 4096, "%s/blobs/%.*s/%s", layout_dir, (int)(colon - digest), digest, colon + 1);
    return path;
}

int wi_closed_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        if (fd >= 0) close(fd);
        return 9; /* discard: nothing listens there on a test machine */
    }
    close(fd);
    return ntohs(addr.sin_port);
}

void wi_unique_repo(char *out, size_t size, const char *tag) {
    static unsigned counter;
    snprintf(out, size, "ctests/%s-%ld-%u-%ld", tag, (long)getpid(), __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST),
             (long)time(NULL));
}

double wi_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void wi_sleep_ms(unsigned ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void wi_base64(const void *data, size_t len, char *out) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *in = data;
    size_t i;
    for (i = 0; i + 2 < len; i += 3) {
        *out++ = alphabet[in[i] >> 2];
        *out++ = alphabet[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
        *out++ = alphabet[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
        *out++ = alphabet[in[i + 2] & 63];
    }
    if (i < len) {
        *out++ = alphabet[in[i] >> 2];
        if (i + 1 < len) {
            *out++ = alphabet[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
            *out++ = alphabet[(in[i + 1] & 15) << 2];
        } else {
            *out++ = alphabet[(in[i] & 3) << 4];
            *out++ = '=';
        }
        *out++ = '=';
    }
    *out = '\0';
}
