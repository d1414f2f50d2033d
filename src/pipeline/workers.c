/* See include/leadflow/workers.h. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "leadflow/log.h"
#include "leadflow/workers.h"

/* Exit status of a worker as the shell would say it. */
static int lf_worker_status(int st)
{
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return 1;
}

static volatile sig_atomic_t *lf_worker_stop, *lf_worker_reload;

static void lf_worker_on_stop(int sig)
{
    (void)sig;
    (*lf_worker_stop)++;
}

static void lf_worker_on_reload(int sig)
{
    (void)sig;
    *lf_worker_reload = 1;
}

/* In a worker: stop on SIGUSR1 only, which the parent sends once per SIGTERM/SIGINT it gets.
 * A Ctrl-C (to the whole process group) or a stop of the whole cgroup reaches the workers
 * too; were they to count it as well, every stop would be a second signal (give up waiting)
 * for them. Likewise SIGHUP: the parent passes it on as SIGUSR2 (reload), once per signal
 * it got. If the parent dies, they stop (PR_SET_PDEATHSIG). */
static void lf_worker_signals(const lf_run_opts_t *opts, pid_t parent)
{
    lf_worker_stop = opts->stop;
    lf_worker_reload = opts->reload;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = lf_worker_on_stop;
    sigaction(SIGUSR1, &sa, NULL);
    if (opts->reload) {
        sa.sa_handler = lf_worker_on_reload;
        sigaction(SIGUSR2, &sa, NULL);
    }
    prctl(PR_SET_PDEATHSIG, SIGUSR1);
    if (getppid() != parent) raise(SIGUSR1); /* it died before prctl */
}

static void lf_signal_live(const pid_t *pids, int n, int sig)
{
    for (int k = 0; k < n; k++)
        if (pids[k] > 0) kill(pids[k], sig);
}

int lf_workers_run(lf_config_t *cfg, const lf_run_opts_t *opts, int n)
{
    pid_t pids[LF_WORKERS_MAX];
    char base[96];
    if (opts->instance)
        snprintf(base, sizeof(base), "%s", opts->instance);
    else
        lf_instance_default(base, sizeof(base));
    int started = 0, rc = 0;
    /* Fork before anything opens a connection or a thread (librdkafka, hiredis): each worker
     * starts from the bare configuration. */
    fflush(NULL);
    /* Inherited: a SIGUSR2 (reload) that reaches a worker before it installs its handler
     * is dropped, not fatal. */
    signal(SIGUSR2, SIG_IGN);
    pid_t parent = getpid();
    for (; started < n; started++) {
        pid_t pid = fork();
        if (pid < 0) {
            lf_log("error", "cannot start worker %d of %d: %s", started + 1, n, strerror(errno));
            rc = 2;
            break;
        }
        if (pid == 0) {
            char name[128], tag[16];
            snprintf(name, sizeof(name), "%s-%d", base, started + 1);
            snprintf(tag, sizeof(tag), "w%d", started + 1);
            lf_log_set_tag(tag);
            lf_worker_signals(opts, parent);
            lf_run_opts_t mine = *opts;
            mine.instance = name;
            mine.metrics_port_offset = started;
            _exit(lf_pipeline_run(cfg, &mine));
        }
        pids[started] = pid;
    }
    if (rc == 0)
        lf_log("info", "%d workers started (instances %s-1 .. %s-%d)", n, base, base, n);
    else
        lf_signal_live(pids, started, SIGUSR1);
    int live = started, forwarded = 0;
    while (live > 0) {
        /* Every signal this process received goes to each worker once (the second one makes
         * them give up waiting, as for a single instance). */
        while (forwarded < (int)*opts->stop) {
            lf_signal_live(pids, started, SIGUSR1);
            forwarded++;
        }
        if (opts->reload && *opts->reload) { /* SIGHUP: each worker reloads on its own */
            *opts->reload = 0;
            lf_log("info", "SIGHUP: asking the %d workers to reload the rules file", live);
            lf_signal_live(pids, started, SIGUSR2);
        }
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid < 0 && errno != EINTR) break; /* no child left */
        if (pid <= 0) {
            struct timespec ts = {0, 50 * 1000000L}; /* a signal ends the sleep early */
            nanosleep(&ts, NULL);
            continue;
        }
        for (int k = 0; k < started; k++) {
            if (pids[k] != pid) continue;
            pids[k] = -1;
            live--;
            int code = lf_worker_status(st);
            if (code != 0 && rc == 0) { /* the first failure names the exit status */
                lf_log("error",
                       "worker %d (%s-%d) exited with status %d: stopping the other workers", k + 1,
                       base, k + 1, code);
                rc = code;
                lf_signal_live(pids, started, SIGUSR1);
            }
        }
    }
    return rc;
}
