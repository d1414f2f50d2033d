"""What per-slot index shards would cost on a Redis Cluster (docs/design.md, "Redis Cluster: the
write path by slot", step 5): on a local 3-master cluster started like the tests' (free
loopback ports, `redis-cli --cluster create`), one small entry in a `top` shard and a `funnel`
shard per slot (the tags of lf_cluster_tags_build, recomputed here), then the memory they
take and the time to read every shard with pipelines per node, three times.
Run: LF_BIN=build/leadflow python3 bench/cluster_shards.py   (prints its figures; asserts none)"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import lfharness as H  # noqa: E402
import redis  # noqa: E402



def used(ports):
    return sum(redis.Redis(port=p).info("memory")["used_memory"] for p in ports)


def main():
    tags = H.slot_tags()
    env = H.new_env("cluster-shards")
    try:
        ports = env.start_cluster(masters=3)
        rc = redis.cluster.RedisCluster(host="127.0.0.1", port=ports[0])
        before = used(ports)
        pipe = rc.pipeline()
        for k, t in enumerate(tags):
            pipe.zadd("lf:top:{%s}" % t, {"lead-%d" % k: 1.0})
            pipe.hincrby("lf:funnel:{%s}" % t, "mql", 1)
        pipe.execute()
        grown = used(ports) - before
        print("memory: %.1f MB for 2 x 16384 one-entry shards, %.0f bytes per shard key" %
              (grown / 1e6, grown / 32768.0))
        for trial in range(3):
            t0 = time.monotonic()
            pipe = rc.pipeline()
            for t in tags:
                pipe.zrevrange("lf:top:{%s}" % t, 0, 9, withscores=True)
            pipe.execute()
            t1 = time.monotonic()
            pipe = rc.pipeline()
            for t in tags:
                pipe.zrangebyscore("lf:stage:mql:{%s}" % t, 0, 1e18, start=0, num=100)
            pipe.execute()
            t2 = time.monotonic()
            print("run %d: every top shard read in %.0f ms, every (empty) stage shard scanned in "
                  "%.0f ms" % (trial + 1, (t1 - t0) * 1000, (t2 - t1) * 1000))
    finally:
        env.close()


if __name__ == "__main__":
    main()
