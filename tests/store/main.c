/* Store tests: leadflow's Redis back end (src/store/store_redis*.c) against a real redis-server
 * that this program starts on a free loopback port and stops at the end. Ends with "N passed, N
 * failed". Usage: test_store [name-substring] */
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../unit/test.h"
#include "store_test.h"

lf_config_t lf_store_test_cfg;
lf_store_t *lf_store_test_store;
redisContext *lf_store_test_redis;

int lf_store_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* redis-server on a free port, answering PING; its pid, or -1. */
static pid_t lf_start_redis(int *port_out)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = lf_store_test_free_port();
        if (port < 0) return -1;
        char ps[16];
        snprintf(ps, sizeof(ps), "%d", port);
        pid_t pid = fork();
        if (pid < 0) return -1;
        if (pid == 0) {
            if (!freopen("/dev/null", "w", stdout)) _exit(127);
            execlp("redis-server", "redis-server", "--port", ps, "--bind", "127.0.0.1", "--save",
                   "", "--appendonly", "no", "--dir", "/tmp", (char *)NULL);
            _exit(127);
        }
        for (int i = 0; i < 200; i++) { /* up to 10 s */
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
            int status;
            if (waitpid(pid, &status, WNOHANG) == pid) break; /* exited: port taken? */
            redisContext *c = redisConnect("127.0.0.1", port);
            redisReply *r = c && !c->err ? redisCommand(c, "PING") : NULL;
            int up = r && r->type == REDIS_REPLY_STATUS;
            if (r) freeReplyObject(r);
            if (c) redisFree(c);
            if (up) {
                *port_out = port;
                return pid;
            }
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return -1;
}

void lf_store_test_flush(void)
{
    redisReply *r = redisCommand(lf_store_test_redis, "FLUSHALL");
    if (r) freeReplyObject(r);
}

int main(int argc, char **argv)
{
    if (argc > 1) lf_test_filter(argv[1]);
    int port = 0;
    pid_t redis = lf_start_redis(&port);
    if (redis < 0) {
        printf("cannot start redis-server (is it installed? apt-get install redis-server)\n");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    lf_config_defaults(&lf_store_test_cfg);
    lf_store_test_cfg.redis_port = port;
    lf_err_t err = {0};
    lf_store_test_store = lf_store_redis_open(&lf_store_test_cfg, &err);
    lf_store_test_redis = redisConnect("127.0.0.1", port);
    int rc = 1;
    if (!lf_store_test_redis || lf_store_test_redis->err || err.code) {
        printf("cannot connect to redis-server on port %d: %s\n", port, err.msg);
        printf("0 passed, 1 failed\n");
    } else {
#define LF_SUITE(s) void s(void);
#include "suites.h"
#undef LF_SUITE
#define LF_SUITE(s) s();
#include "suites.h"
#undef LF_SUITE
        rc = lf_test_summary();
    }
    if (lf_store_test_store) lf_store_test_store->ops->close(lf_store_test_store);
    if (lf_store_test_redis) redisFree(lf_store_test_redis);
    lf_config_free(&lf_store_test_cfg);
    kill(redis, SIGTERM);
    waitpid(redis, NULL, 0);
    return rc;
}
