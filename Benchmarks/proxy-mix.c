/* proxy-mix: a closed-loop keep-alive load generator for the transform proxy's cache.
 *
 * Each of CONNS connections to 127.0.0.1:PORT sends one extended netstring request at a time,
 * `!NAME.PAYLOAD`; MISS percent of requests carry a payload never sent before (a cache miss at the
 * proxy), the rest one fixed payload (a hit once cached). Replies must be `+` and the lower-cased
 * payload. Prints requests/s and latency percentiles, overall and for the two kinds, and with
 * -P the server's CPU time per request over the measured window.
 *
 * Build: gcc -O2 -o /tmp/proxy-mix Benchmarks/proxy-mix.c
 * Run:   taskset -c 1 /tmp/proxy-mix -p 11001 -c 16 -d 5 -m 10 -t slowcummingsify -P $PROXY_PID
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES (4u << 20)

typedef struct {
    int fd;
    char *req, *rep;
    size_t req_len, rep_len, sent, got;
    uint64_t started;
    int miss;
} conn_t;

static int port, conns = 16, duration = 5, warmup = 1, miss_pct = 10, payload_size = 64;
static const char *name = "cummingsify";
static long server_pid;
static uint64_t counter;
static uint64_t *lat[2];
static size_t nlat[2];
static uint64_t errors, measured_start, measured_end;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(long pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (p) sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Builds the next request on `c`: a fresh payload with probability miss_pct, else the fixed one. */
static void next_request(conn_t *c) {
    static const char pattern[] = "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG ";
    char *payload = malloc((size_t)payload_size);
    for (int i = 0; i < payload_size; i++) payload[i] = pattern[i % (int)(sizeof pattern - 1)];
    c->miss = (int)(random() % 100) < miss_pct;
    if (c->miss) { /* a unique prefix, upper-case letters so the lower-cased reply is checkable */
        uint64_t v = ++counter;
        for (int i = 0; i < 12 && i < payload_size; i++) { payload[i] = (char)('A' + v % 26); v /= 26; }
    }
    size_t nlen = strlen(name), body = 1 + nlen + 1 + (size_t)payload_size;
    char head[32];
    int hl = snprintf(head, sizeof head, "%zu:", body);
    free(c->req);
    c->req_len = (size_t)hl + body + 1;
    c->req = malloc(c->req_len);
    memcpy(c->req, head, (size_t)hl);
    c->req[hl] = '!';
    memcpy(c->req + hl + 1, name, nlen);
    c->req[hl + 1 + nlen] = '.';
    memcpy(c->req + hl + 2 + nlen, payload, (size_t)payload_size);
    c->req[c->req_len - 1] = ',';
    hl = snprintf(head, sizeof head, "%d:", payload_size + 1);
    free(c->rep);
    c->rep_len = (size_t)hl + 1 + (size_t)payload_size + 1;
    c->rep = malloc(c->rep_len);
    memcpy(c->rep, head, (size_t)hl);
    c->rep[hl] = '+';
    for (int i = 0; i < payload_size; i++) {
        char ch = payload[i];
        c->rep[hl + 1 + i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch | 0x20) : ch;
    }
    c->rep[c->rep_len - 1] = ',';
    free(payload);
    c->sent = c->got = 0;
    c->started = now_ns();
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *v, size_t n) {
    if (n == 0) { printf("%-8s no requests\n", what); return; }
    qsort(v, n, sizeof *v, cmp_u64);
    printf("%-8s %8zu requests  p50 %7.0f us  p90 %7.0f us  p99 %7.0f us\n", what, n, v[n / 2] / 1e3,
           v[(size_t)(n * 0.9)] / 1e3, v[(size_t)(n * 0.99)] / 1e3);
}

int main(int argc, char **argv) {
    int opt;
    while ((opt = getopt(argc, argv, "p:c:d:w:m:s:t:P:h")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'c': conns = atoi(optarg); break;
        case 'd': duration = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 'm': miss_pct = atoi(optarg); break;
        case 's': payload_size = atoi(optarg); break;
        case 't': name = optarg; break;
        case 'P': server_pid = atol(optarg); break;
        default:
            fprintf(stderr, "usage: %s -p PORT [-c CONNS] [-d SECONDS] [-w WARMUP] [-m MISS%%] [-s BYTES] "
                            "[-t NAME] [-P SERVER_PID]\n", argv[0]);
            return 2;
        }
    }
    if (port <= 0 || conns < 1 || conns > 4096 || duration < 1 || duration > 600 || payload_size < 12 ||
        miss_pct < 0 || miss_pct > 100) {
        fprintf(stderr, "bad arguments (-h for usage)\n");
        return 2;
    }
    srandom(1);
    lat[0] = malloc(MAX_SAMPLES * sizeof(uint64_t));
    lat[1] = malloc(MAX_SAMPLES * sizeof(uint64_t));
    int ep = epoll_create1(0);
    conn_t *cs = calloc((size_t)conns, sizeof *cs);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("connect"); return 1; }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        cs[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        next_request(&cs[i]);
        if (write(fd, cs[i].req, cs[i].req_len) != (ssize_t)cs[i].req_len) { perror("write"); return 1; }
    }
    uint64_t start = now_ns();
    measured_start = start + (uint64_t)warmup * 1000000000u;
    measured_end = measured_start + (uint64_t)duration * 1000000000u;
    double cpu0 = -1;
    char buf[65536];
    struct epoll_event evs[256];
    for (;;) {
        uint64_t t = now_ns();
        if (cpu0 < 0 && t >= measured_start && server_pid) cpu0 = cpu_seconds(server_pid);
        if (t >= measured_end) break;
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            conn_t *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, buf, sizeof buf);
            if (r <= 0) { fprintf(stderr, "connection closed by the server\n"); return 1; }
            if (c->got + (size_t)r > c->rep_len || memcmp(buf, c->rep + c->got, (size_t)r) != 0) {
                fprintf(stderr, "unexpected reply: %.*s\n", (int)(r > 80 ? 80 : r), buf);
                errors++;
                return 1;
            }
            c->got += (size_t)r;
            if (c->got < c->rep_len) continue;
            uint64_t done = now_ns();
            if (c->started >= measured_start && done <= measured_end && nlat[c->miss] < MAX_SAMPLES)
                lat[c->miss][nlat[c->miss]++] = done - c->started;
            next_request(c);
            if (write(c->fd, c->req, c->req_len) != (ssize_t)c->req_len) { perror("write"); return 1; }
        }
    }
    double cpu1 = server_pid ? cpu_seconds(server_pid) : 0;
    size_t total = nlat[0] + nlat[1];
    printf("%d connections, %d%% fresh payloads, %s, %d s: %.0f requests/s, %llu errors\n", conns, miss_pct, name,
           duration, (double)total / duration, (unsigned long long)errors);
    uint64_t *all = malloc(total * sizeof *all);
    memcpy(all, lat[0], nlat[0] * sizeof *all);
    memcpy(all + nlat[0], lat[1], nlat[1] * sizeof *all);
    report("all", all, total);
    report("repeated", lat[0], nlat[0]);
    report("fresh", lat[1], nlat[1]);
    if (server_pid && cpu0 >= 0 && total)
        printf("server CPU: %.2f s, %.2f us per request\n", cpu1 - cpu0, (cpu1 - cpu0) * 1e6 / (double)total);
    return 0;
}
