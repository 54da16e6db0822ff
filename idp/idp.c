/* idp.c: the parent process of idp: reads the configuration once, opens the sockets,
 * forks the signer and the workers, restarts children that die (with back-off), rolls
 * the workers on SIGHUP and drains everything on SIGTERM. It holds no key material. */
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "idp.h"
#include "log.h"
#include "metrics.h"
#include "secret.h"
#include "signer.h"
#include "worker.h"
#include "xalloc.h"

#define IDP_MAX_WORKERS		64
#define RESTART_MIN_MS		100
#define RESTART_MAX_MS		10000
#define STABLE_SECONDS		10	/* a child up this long resets its back-off */
#define DRAIN_SECONDS		15	/* then children still alive are killed */

enum child_role { ROLE_SIGNER, ROLE_WORKER };

struct child {
	enum child_role	 role;
	int		 slot;		/* worker slot (metrics); -1 for the signer */
	pid_t		 pid;		/* 0 when not running */
	time_t		 started;
	int		 failures;	/* consecutive quick deaths */
	struct event	*restart;	/* back-off timer */
};

struct parent {
	struct event_base	*base;
	struct idp_config	 conf;
	const char		*conf_path;
	int			 http_fd;
	int			 signer_fd;
	char			 rundir[64];
	char			 signer_path[96];	/* fits sun_path */
	struct metrics		*metrics;
	int			 nworkers;
	struct child		 signer;
	struct child		 workers[IDP_MAX_WORKERS];
	pid_t			 draining[IDP_MAX_WORKERS * 4];	/* old workers finishing */
	int			 stopping;
	struct event		*stop_deadline;
};

static void	child_start(struct parent *, struct child *);

static void
usage(void)
{
	fprintf(stderr, "usage: idp [-n] -c FILE\n"
	    "  -c FILE   configuration file (\"key = value\" lines; IDP_<KEY> environment\n"
	    "            variables override it)\n"
	    "  -n        check the configuration, say so, and exit\n"
	    "See README.md for every key.\n");
	exit(2);
}

/* Refuse a key-encryption key file that others may read or that is not 32 bytes. */
static int
kek_check(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "key_encryption_key_file %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size != 32) {
		snprintf(err, errlen, "key_encryption_key_file %s must be a file of exactly "
		    "32 bytes (idpctl kek generate FILE makes one)", path);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen, "key_encryption_key_file %s is readable or writable by "
		    "others (mode %03o); chmod 600 it", path, (unsigned)(st.st_mode & 0777));
		return -1;
	}
	return 0;
}

static int
open_http(const char *listen_spec)
{
	struct addrinfo hints, *res, *ai;
	char *host, *port;
	int fd = -1, on = 1, r;

	host = xstrdup(listen_spec);
	port = strrchr(host, ':');
	*port++ = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if ((r = getaddrinfo(*host != '\0' ? host : NULL, port, &hints, &res)) != 0)
		fatalx("listen %s: %s", listen_spec, gai_strerror(r));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol)) == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
			break;
		close(fd);
		fd = -1;
	}
	if (fd == -1)
		fatal("cannot listen on %s", listen_spec);
	freeaddrinfo(res);
	free(host);
	return fd;
}

/* The signer's socket: a Unix stream socket in a new 0700 directory. */
static int
open_signer_socket(struct parent *p)
{
	struct sockaddr_un sun;
	int fd;

	snprintf(p->rundir, sizeof(p->rundir), "/tmp/idp-XXXXXX");
	if (mkdtemp(p->rundir) == NULL)
		fatal("mkdtemp");
	snprintf(p->signer_path, sizeof(p->signer_path), "%s/signer.sock", p->rundir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p->signer_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fatal("socket");
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 || listen(fd, 128) == -1)
		fatal("signer socket %s", p->signer_path);
	return fd;
}

static struct parent *the_parent;	/* for restart_timer: one parent per process */

static void
restart_timer(evutil_socket_t fd, short what, void *arg)
{
	struct child *c = arg;

	if (!the_parent->stopping && c->pid == 0)
		child_start(the_parent, c);
}

static void
child_start(struct parent *p, struct child *c)
{
	enum log_level lvl = LOG_LVL_INFO;
	char role[32];
	pid_t pid;

	log_level_parse(p->conf.log_level, &lvl);
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) == -1) {
		log_warn("fork");
		c->failures++;
		return;
	}
	if (pid == 0) {
		struct sigaction sa;

		/* The child starts with default signal handling and its own loop. */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(SIGCHLD, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		event_reinit(p->base);
		if (c->role == ROLE_SIGNER) {
			close(p->http_fd);
			log_init("signer", lvl);
			signer_main(&p->conf, p->signer_fd);
		}
		close(p->signer_fd);
		snprintf(role, sizeof(role), "worker %d", c->slot);
		log_init(role, lvl);
		worker_main(&p->conf, p->http_fd, p->signer_path, c->slot, p->metrics);
	}
	c->pid = pid;
	c->started = time(NULL);
	log_debug("started %s %d as pid %ld", c->role == ROLE_SIGNER ? "signer" :
	    "worker", c->slot, (long)pid);
}

static struct child *
child_by_pid(struct parent *p, pid_t pid)
{
	int i;

	if (p->signer.pid == pid)
		return &p->signer;
	for (i = 0; i < p->nworkers; i++)
		if (p->workers[i].pid == pid)
			return &p->workers[i];
	return NULL;
}

static int
draining_remove(struct parent *p, pid_t pid)
{
	size_t i;

	for (i = 0; i < sizeof(p->draining) / sizeof(p->draining[0]); i++) {
		if (p->draining[i] == pid) {
			p->draining[i] = 0;
			return 1;
		}
	}
	return 0;
}

static int
children_alive(struct parent *p)
{
	size_t i;
	int n = p->signer.pid != 0;

	for (i = 0; i < (size_t)p->nworkers; i++)
		n += p->workers[i].pid != 0;
	for (i = 0; i < sizeof(p->draining) / sizeof(p->draining[0]); i++)
		n += p->draining[i] != 0;
	return n;
}

static void
describe_exit(char *buf, size_t len, int status)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "stopped");
}

static void
stop_workers_then_signer(struct parent *p)
{
	int i, workers = 0;
	size_t j;

	for (i = 0; i < p->nworkers; i++)
		workers += p->workers[i].pid != 0;
	for (j = 0; j < sizeof(p->draining) / sizeof(p->draining[0]); j++)
		workers += p->draining[j] != 0;
	/* The signer goes last, once no worker can need a signature any more. */
	if (workers == 0 && p->signer.pid != 0)
		kill(p->signer.pid, SIGTERM);
}

static void
on_sigchld(evutil_socket_t sig, short what, void *arg)
{
	struct parent *p = arg;
	struct child *c;
	struct timeval tv;
	char how[64];
	long ms;
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		describe_exit(how, sizeof(how), status);
		if (draining_remove(p, pid)) {
			log_debug("drained worker pid %ld %s", (long)pid, how);
			continue;
		}
		if ((c = child_by_pid(p, pid)) == NULL)
			continue;
		c->pid = 0;
		if (p->stopping)
			continue;
		if (c->role == ROLE_SIGNER && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
		    c->failures == -1) {
			/* A restart we asked for (SIGHUP): at once. */
			c->failures = 0;
			child_start(p, c);
			continue;
		}
		log_warnx("%s %s; restarting", c->role == ROLE_SIGNER ? "signer" :
		    "worker", how);
		if (time(NULL) - c->started >= STABLE_SECONDS)
			c->failures = 0;
		ms = RESTART_MIN_MS;
		for (int i = 0; i < c->failures && ms < RESTART_MAX_MS; i++)
			ms *= 2;
		if (ms > RESTART_MAX_MS)
			ms = RESTART_MAX_MS;
		c->failures++;
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		evtimer_add(c->restart, &tv);
	}
	if (p->stopping) {
		stop_workers_then_signer(p);
		if (children_alive(p) == 0)
			event_base_loopexit(p->base, NULL);
	}
}

static void
stop_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct parent *p = arg;
	size_t i;

	log_warnx("children still running after %d s; killing them", DRAIN_SECONDS);
	for (i = 0; i < (size_t)p->nworkers; i++)
		if (p->workers[i].pid != 0)
			kill(p->workers[i].pid, SIGKILL);
	for (i = 0; i < sizeof(p->draining) / sizeof(p->draining[0]); i++)
		if (p->draining[i] != 0)
			kill(p->draining[i], SIGKILL);
	if (p->signer.pid != 0)
		kill(p->signer.pid, SIGKILL);
}

static void
on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct parent *p = arg;
	struct timeval tv = { DRAIN_SECONDS, 0 };
	size_t i;

	if (p->stopping)
		return;
	log_info("%s: draining and stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	p->stopping = 1;
	for (i = 0; i < (size_t)p->nworkers; i++) {
		evtimer_del(p->workers[i].restart);
		if (p->workers[i].pid != 0)
			kill(p->workers[i].pid, SIGTERM);
	}
	for (i = 0; i < sizeof(p->draining) / sizeof(p->draining[0]); i++)
		if (p->draining[i] != 0)
			kill(p->draining[i], SIGTERM);
	evtimer_del(p->signer.restart);
	stop_workers_then_signer(p);
	if (children_alive(p) == 0) {
		event_base_loopexit(p->base, NULL);
		return;
	}
	p->stop_deadline = evtimer_new(p->base, stop_deadline_cb, p);
	evtimer_add(p->stop_deadline, &tv);
}

/*
 * argon2_threads = 0 (the default): the machine's cores shared among the workers, at
 * least one each. Argon2id is bound by memory bandwidth: more hashing threads than
 * cores made each hash cost more CPU and gained nothing (bench/RESULTS.md, issue 4).
 */
static void
resolve_argon2_threads(struct idp_config *c)
{
	long ncpu;

	if (c->argon2_threads != 0)
		return;
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	c->argon2_threads = ncpu > 0 && c->workers > 0 ? ncpu / c->workers : 1;
	if (c->argon2_threads < 1)
		c->argon2_threads = 1;
}

static void
on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct parent *p = arg;
	struct idp_config nc;
	char err[512];
	int i;
	size_t j;

	if (p->stopping)
		return;
	if (idp_config_load(&nc, p->conf_path, err, sizeof(err)) == -1) {
		log_warnx("SIGHUP: configuration not reloaded: %s", err);
		return;
	}
	if (kek_check(nc.key_encryption_key_file, err, sizeof(err)) == -1) {
		log_warnx("SIGHUP: configuration not reloaded: %s", err);
		idp_config_free(&nc);
		return;
	}
	if (strcmp(nc.listen, p->conf.listen) != 0)
		log_warnx("SIGHUP: a new listen address takes a restart; keeping %s",
		    p->conf.listen);
	free(nc.listen);
	nc.listen = xstrdup(p->conf.listen);
	if (nc.workers == 0)
		nc.workers = sysconf(_SC_NPROCESSORS_ONLN) > 0 ?
		    sysconf(_SC_NPROCESSORS_ONLN) : 1;
	if (nc.workers != p->nworkers)
		log_warnx("SIGHUP: a new number of workers takes a restart; keeping %d",
		    p->nworkers);
	nc.workers = p->nworkers;
	resolve_argon2_threads(&nc);
	idp_config_free(&p->conf);
	p->conf = nc;
	log_info("SIGHUP: configuration reloaded; rolling the signer and the workers");

	/* The signer restarts with the new configuration; workers reconnect to it. */
	if (p->signer.pid != 0) {
		p->signer.failures = -1;
		kill(p->signer.pid, SIGTERM);
	}
	/* New workers first, then the old ones drain: no request is refused. */
	for (i = 0; i < p->nworkers; i++) {
		pid_t old = p->workers[i].pid;

		p->workers[i].pid = 0;
		p->workers[i].failures = 0;
		child_start(p, &p->workers[i]);
		if (old == 0)
			continue;
		for (j = 0; j < sizeof(p->draining) / sizeof(p->draining[0]); j++) {
			if (p->draining[j] == 0) {
				p->draining[j] = old;
				break;
			}
		}
		kill(old, SIGTERM);
	}
}

int
main(int argc, char **argv)
{
	struct parent p;
	struct event *ev_chld, *ev_hup, *ev_term, *ev_int;
	struct rlimit rl = { 0, 0 };
	enum log_level lvl = LOG_LVL_INFO;
	const char *conf_path = NULL;
	char err[512];
	int ch, check_only = 0, i;

	while ((ch = getopt(argc, argv, "c:nh")) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'n':
			check_only = 1;
			break;
		default:
			usage();
		}
	}
	if (conf_path == NULL || optind != argc)
		usage();
	secret_init();
	log_init("idp", LOG_LVL_INFO);
	memset(&p, 0, sizeof(p));
	the_parent = &p;
	p.conf_path = conf_path;
	if (idp_config_load(&p.conf, conf_path, err, sizeof(err)) == -1) {
		fprintf(stderr, "idp: %s\n", err);
		return 1;
	}
	if (kek_check(p.conf.key_encryption_key_file, err, sizeof(err)) == -1) {
		fprintf(stderr, "idp: %s\n", err);
		idp_config_free(&p.conf);
		return 1;
	}
	if (check_only) {
		printf("idp: configuration %s OK\n", conf_path);
		idp_config_free(&p.conf);
		return 0;
	}
	log_level_parse(p.conf.log_level, &lvl);
	log_init("parent", lvl);
	setrlimit(RLIMIT_CORE, &rl);
	signal(SIGPIPE, SIG_IGN);

	p.nworkers = (int)p.conf.workers;
	if (p.nworkers == 0)
		p.nworkers = sysconf(_SC_NPROCESSORS_ONLN) > 0 ?
		    (int)sysconf(_SC_NPROCESSORS_ONLN) : 1;
	if (p.nworkers > IDP_MAX_WORKERS)
		p.nworkers = IDP_MAX_WORKERS;
	p.conf.workers = p.nworkers;
	resolve_argon2_threads(&p.conf);
	p.http_fd = open_http(p.conf.listen);
	p.signer_fd = open_signer_socket(&p);
	if ((p.metrics = metrics_create(p.nworkers)) == NULL)
		fatalx("cannot create the shared metrics");
	if ((p.base = event_base_new()) == NULL)
		fatalx("event_base_new");

	p.signer.role = ROLE_SIGNER;
	p.signer.slot = -1;
	p.signer.restart = evtimer_new(p.base, restart_timer, &p.signer);
	child_start(&p, &p.signer);
	for (i = 0; i < p.nworkers; i++) {
		p.workers[i].role = ROLE_WORKER;
		p.workers[i].slot = i;
		p.workers[i].restart = evtimer_new(p.base, restart_timer, &p.workers[i]);
		child_start(&p, &p.workers[i]);
	}
	ev_chld = evsignal_new(p.base, SIGCHLD, on_sigchld, &p);
	ev_hup = evsignal_new(p.base, SIGHUP, on_sighup, &p);
	ev_term = evsignal_new(p.base, SIGTERM, on_sigterm, &p);
	ev_int = evsignal_new(p.base, SIGINT, on_sigterm, &p);
	event_add(ev_chld, NULL);
	event_add(ev_hup, NULL);
	event_add(ev_term, NULL);
	event_add(ev_int, NULL);
	log_info("listening on %s as %s with %d workers, %ld Argon2id threads each",
	    p.conf.listen, p.conf.issuer, p.nworkers, p.conf.argon2_threads);
	/* A child may have died before the SIGCHLD event existed. */
	on_sigchld(SIGCHLD, 0, &p);
	event_base_dispatch(p.base);

	unlink(p.signer_path);
	rmdir(p.rundir);
	log_info("stopped");
	event_free(ev_chld);
	event_free(ev_hup);
	event_free(ev_term);
	event_free(ev_int);
	if (p.stop_deadline != NULL)
		event_free(p.stop_deadline);
	event_free(p.signer.restart);
	for (i = 0; i < p.nworkers; i++)
		event_free(p.workers[i].restart);
	event_base_free(p.base);
	idp_config_free(&p.conf);
	return 0;
}
