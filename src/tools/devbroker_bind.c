/* The bind() interposer that gives librdkafka's mock brokers fixed ports.
 *
 * librdkafka 2.0.2 has no way to choose the mock brokers' ports: each mock broker binds
 * 127.0.0.1 port 0 and advertises whatever the kernel picked. Tests and demos need a fixed,
 * known address, so this file defines the process's bind(): while lf_devbroker_bind_arm()
 * has armed it (only around rd_kafka_mock_cluster_new), a port-0 AF_INET bind is rewritten
 * to the next fixed port; every other bind goes straight to the C library's. The binary is
 * linked with -rdynamic so that librdkafka's call to bind() resolves to the one defined here.
 *
 * Armed and read on the main thread; bind() may run on any thread of the process, hence
 * the atomics. */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>

#include "devbroker_int.h"

typedef int (*db_bind_fn)(int, const struct sockaddr *, socklen_t);

/* Armed state. next_port is 0 when disarmed; the counters tell the caller what happened. */
static atomic_int db_next_port;
static atomic_int db_bind_left;  /* how many more binds may be rewritten */
static atomic_int db_bind_errno; /* errno of the first failed rewritten bind, else 0 */
static atomic_int db_bind_failed_port;
static atomic_int db_bind_done; /* rewritten binds that succeeded */

static db_bind_fn db_real_bind(void)
{
    static _Atomic(db_bind_fn) real;
    db_bind_fn fn = atomic_load(&real);
    if (!fn) {
        union {
            void *obj;
            db_bind_fn fn;
        } u;
        u.obj = dlsym(RTLD_NEXT, "bind");
        fn = u.fn;
        atomic_store(&real, fn);
    }
    return fn;
}

/* The process-wide bind(). Forwards unchanged unless armed and the call is an AF_INET bind to
 * port 0, which is what rd_kafka_mock_cluster_new does for every broker. SO_REUSEADDR is set
 * on rewritten sockets so that a devbroker restarted on the same port is not refused because
 * of connections left in TIME_WAIT (a port with a live listener is still refused). */
int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    db_bind_fn real = db_real_bind();
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    int port = atomic_load(&db_next_port);
    if (port > 0 && addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in sin;
        memcpy(&sin, addr, sizeof(sin));
        if (sin.sin_port == 0 && atomic_fetch_sub(&db_bind_left, 1) > 0) {
            int one = 1;
            (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            sin.sin_port = htons((uint16_t)port);
            int rc = real(fd, (const struct sockaddr *)&sin, sizeof(sin));
            if (rc == 0) {
                atomic_fetch_add(&db_bind_done, 1);
                atomic_store(&db_next_port, port + 1);
                return 0;
            }
            if (atomic_load(&db_bind_errno) == 0) {
                atomic_store(&db_bind_failed_port, port);
                atomic_store(&db_bind_errno, errno ? errno : EADDRINUSE);
            }
            /* Fall back to the port-0 bind the mock asked for: librdkafka 2.0.2 aborts on an
             * assertion when a mock broker cannot bind. The caller sees the recorded error,
             * destroys the cluster cleanly and reports the port. */
            atomic_store(&db_bind_left, 0);
            atomic_store(&db_next_port, 0);
        }
    }
    return real(fd, addr, len);
}

void lf_devbroker_bind_arm(int first_port, int count)
{
    atomic_store(&db_bind_errno, 0);
    atomic_store(&db_bind_failed_port, 0);
    atomic_store(&db_bind_done, 0);
    atomic_store(&db_bind_left, count);
    atomic_store(&db_next_port, first_port);
}

void lf_devbroker_bind_disarm(void)
{
    atomic_store(&db_next_port, 0);
    atomic_store(&db_bind_left, 0);
}

void lf_devbroker_bind_result(lf_devbroker_bind_result_t *r)
{
    r->err = atomic_load(&db_bind_errno);
    r->failed_port = atomic_load(&db_bind_failed_port);
    r->done = atomic_load(&db_bind_done);
}
