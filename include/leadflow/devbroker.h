/* `leadflow devbroker`: an embedded Kafka for development and tests, built on librdkafka's
 * mock cluster (in memory, not for production). It listens on fixed loopback ports, creates
 * the contract's topics, prints `bootstrap.servers=...` on stdout once ready, accepts fault
 * injection commands on an optional line-based TCP control port, and runs until SIGINT or
 * SIGTERM. */
#ifndef LEADFLOW_DEVBROKER_H
#define LEADFLOW_DEVBROKER_H

/* The subcommand; argv[0] is "devbroker". Returns the process exit status. */
int lf_cmd_devbroker(int argc, char **argv);

#endif
