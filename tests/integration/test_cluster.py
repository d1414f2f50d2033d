"""leadflow against a Redis Cluster, on a local cluster the test starts (three masters,
`redis-server --cluster-enabled yes` on free loopback ports, `redis-cli --cluster create`).
Until a cluster back end exists, a cluster node is refused at once with the reason (it used
to answer the first transaction with CROSSSLOT and leave the instance degraded for ever).
Run: LF_BIN=build/leadflow python3 tests/integration/test_cluster.py"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lfharness as H  # noqa: E402
from lfharness import check, check_eq  # noqa: E402


def test_a_cluster_node_is_refused_with_the_reason():
    env = H.new_env("cluster")
    ports = env.start_cluster(masters=3)
    env.start_broker(1)
    env.redis_port = ports[0]
    path = env.deploy_rules()
    with open(path) as f:
        text = f.read()
    check(re.search(r"(?m)^  port: %d$" % ports[0], text), "the rules point at a cluster node")
    r = subprocess.run([H.LF_BIN, "run", "-c", path, "--instance", "c1"], capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    err = r.stderr.decode()
    check_eq(r.returncode, 2, "run against a cluster node: exit status\n" + err[-1500:])
    check("is a Redis Cluster node" in err and "CROSSSLOT" in err, "it says why:\n" + err[-800:])
    # Nothing was written anywhere in the cluster.
    for p in ports:
        import redis as redislib
        c = redislib.Redis(host="127.0.0.1", port=p, socket_timeout=2)
        check_eq(c.dbsize(), 0, "keys on node %d" % p)
        c.close()


if __name__ == "__main__":
    H.main([test_a_cluster_node_is_refused_with_the_reason])
