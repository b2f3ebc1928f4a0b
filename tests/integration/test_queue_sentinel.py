"""Redis Sentinel failover with real processes: one master, one replica and
three sentinels on loopback; the coordinator and the workers find the
master through `sentinel://`, logged in as the ACL users of
deploy/redis-acl.conf (so ROLE and WAIT run under them). The master is killed with SIGKILL while a
batch of no-op jobs (and a few short real encodes) is being submitted and
run: every job answered 201 exists afterwards and completes exactly once
(one job.completed), none is lost, and the API answers 503 only during
the failover window, which the test prints."""
import datetime
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import (ACL_PASSWORDS, Api, Harness, RedisClient, free_port,  # noqa: E402
                         gen_clip, http_json, main, wait_until)

TOKEN = "test-token"
MASTER = "ssm"
NOOP_JOBS = 200
ENCODES = 3
# The writes a 201 or a finished job rests on are on the replica (WAIT).
ACK = {"STREAMSCALE_REDIS_WAIT_REPLICAS": "1", "STREAMSCALE_REDIS_WAIT_MS": "500"}
COORD = dict(ACK, STREAMSCALE_REAP_INTERVAL_MS="200", STREAMSCALE_RETRY_BASE_MS="100",
             STREAMSCALE_RETRY_CAP_MS="400", STREAMSCALE_REDIS_TIMEOUT_MS="500")
WORKER = dict(ACK, STREAMSCALE_LEASE_SECONDS="6", STREAMSCALE_HEARTBEAT_MS="300",
              STREAMSCALE_POLL_MS="200", STREAMSCALE_RETRY_BASE_MS="100",
              STREAMSCALE_RETRY_CAP_MS="400", STREAMSCALE_LOG_LEVEL="info")


def sentinel_conf(h, name, port, mport):
    path = h.path(name + ".conf")
    with open(path, "w") as f:
        f.write("port %d\nbind 127.0.0.1\ndir %s\n"
                "sentinel monitor %s 127.0.0.1 %d 2\n"
                "sentinel down-after-milliseconds %s 1000\n"
                "sentinel failover-timeout %s 10000\n"
                "sentinel parallel-syncs %s 1\n" % (port, h.tmp, MASTER, mport, MASTER, MASTER, MASTER))
    return path


def ask(port, *cmd):
    c = RedisClient(port)
    try:
        return c(*cmd)
    finally:
        c.close()


def start_cluster(h):
    """Master, replica, three sentinels that all see the replica and each
    other (a failover started before that aborts: no good replica)."""
    # both servers hold the ACL users (deploy/redis-acl.conf): the daemons'
    # ROLE and WAIT run under them
    mport = h.redis("master", acl=True)
    rport = free_port()
    h.start("replica", ["redis-server", h.acl_conf(), "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--dir", h.tmp, "--replicaof", "127.0.0.1", str(mport)])
    wait_until(lambda: "master_link_status:up" in ask(rport, "INFO", "replication"), 20,
               "the replica to sync")
    sports = []
    for i in range(3):
        p = free_port()
        h.start("sentinel%d" % i, ["redis-server", sentinel_conf(h, "sentinel%d" % i, p, mport),
                                   "--sentinel"])
        sports.append(p)

    def ready():
        for p in sports:
            reps = ask(p, "SENTINEL", "replicas", MASTER)
            if not any(str(rport) in r for r in reps):
                return False
            if len(ask(p, "SENTINEL", "sentinels", MASTER)) < 2:
                return False
        return True
    wait_until(ready, 30, "every sentinel to list the replica and the other sentinels",
               interval=0.1)
    nodes = ",".join("127.0.0.1:%d" % p for p in sports)
    urls = {u: "sentinel://%s:%s@%s/%s/0" % (u, ACL_PASSWORDS[u], nodes, MASTER)
            for u in ("ss-coordinator", "ss-worker")}
    return mport, rport, sports, urls


def test_queue_sentinel():
    with Harness("queue-sentinel") as h:
        mport, rport, sports, urls = start_cluster(h)
        redis_env = {"STREAMSCALE_REDIS": urls["ss-worker"]}
        api_url = h.coordinator(redis_port=0, token=TOKEN,
                                extra=dict(COORD, STREAMSCALE_REDIS=urls["ss-coordinator"]))
        api = Api(api_url, TOKEN, harness=h)
        log = h.path("completions.log")

        # The API's view of the outage: one probe every 50 ms.
        probes = []
        stop = threading.Event()

        def prober():
            while not stop.is_set():
                t = time.monotonic()
                try:
                    st, _ = http_json("GET", api_url + "/v1/jobs?limit=1", token=TOKEN, timeout=10)
                except OSError:
                    st = 0
                probes.append((t, st))
                time.sleep(0.05)
        pt = threading.Thread(target=prober, daemon=True)
        pt.start()

        accepted = {}     # job id -> kind
        statuses = []     # (time, status) of every submit attempt

        def submit(spec, kind):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                st, body = http_json("POST", api_url + "/v1/jobs", spec, token=TOKEN)
                statuses.append((time.monotonic(), st))
                if st in (200, 201):
                    accepted[body["id"]] = kind
                    return
                assert st == 503, (st, body)
                assert body["error"]["code"] == "unavailable", body
                h.assert_alive()
                time.sleep(0.05)
            raise AssertionError("the API answered 503 for 60 s: %r" % (body,))

        # A few real encodes, running when the master dies: a media worker
        # claims them, then drains (SIGTERM: it finishes them, takes no
        # more) so the no-op jobs go to the no-op workers.
        clip = gen_clip(h.path("clip.mp4"), seconds=4, size="320x240", rate=25)
        h.worker("enc", 0, extra=dict(WORKER, STREAMSCALE_SLOTS=str(ENCODES),
                                      STREAMSCALE_DRAIN_TIMEOUT="300", **redis_env))
        for k in range(ENCODES):
            submit({"source": "file://" + clip, "thumbnails": False, "metadata": {"n": k}},
                   "encode")
        for jid in accepted:
            api.wait_state(jid, ("running", "completed"), 60)
        h.send_signal("enc", signal.SIGTERM)
        for name in ("qa", "qb"):
            h.queue_worker(name, 0, extra=dict(WORKER, SS_QUEUE_LOG=log, STREAMSCALE_SLOTS="8",
                                               **redis_env))

        killed_at = None
        for i in range(NOOP_JOBS):
            if i == NOOP_JOBS // 2:
                h.send_signal("master", signal.SIGKILL)
                killed_at = time.monotonic()
                killed_wall = time.time()
            submit({"source": "file:///noop/%d.mp4" % i, "metadata": {"sleep_ms": 30, "n": i}},
                   "noop")
        assert len(accepted) == NOOP_JOBS + ENCODES, len(accepted)

        # the new master is the old replica
        wait_until(lambda: ask(sports[0], "SENTINEL", "get-master-addr-by-name", MASTER)[1] ==
                   str(rport), 30, "sentinel to name the replica as master")

        def all_done():
            h.assert_alive()
            for jid in accepted:
                st, j = http_json("GET", api_url + "/v1/jobs/" + jid, token=TOKEN)
                if st != 200 or j["state"] not in ("completed", "failed", "dead"):
                    return False
            return True
        wait_until(all_done, 120, "every accepted job to end", interval=0.5)
        stop.set()
        pt.join()

        encodes_after_kill = 0
        for jid, kind in accepted.items():
            j = api.job(jid)
            assert j["state"] == "completed", j
            types = [e["type"] for e in api.events(jid)]
            assert types.count("job.completed") == 1, (jid, types)
            assert types.count("job.queued") == 1, (jid, types)
            if kind == "encode":
                assert j["result"]["renditions"], j
                fin = datetime.datetime.strptime(j["finished_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
                fin = fin.replace(tzinfo=datetime.timezone.utc).timestamp()
                encodes_after_kill += fin > killed_wall
        with open(log) as f:
            runs = [line.split()[0] for line in f if line.strip()]
        noop = [jid for jid, k in accepted.items() if k == "noop"]
        assert set(runs) == set(noop), set(noop) - set(runs)
        reruns = len(runs) - len(set(runs))

        # the outage as the API showed it
        bad = [t for t, st in probes + statuses if st != 200 and st != 201]
        assert all(st in (200, 201, 503) for _, st in probes + statuses), \
            sorted(set(st for _, st in probes + statuses))
        window = (max(bad) - killed_at) if bad else 0.0
        assert not bad or min(bad) >= killed_at - 0.5, "503 before the master was killed"
        print("failover: API answered 503 for %.1f s after the SIGKILL (%d probes, %d submit "
              "retries); %d jobs (%d encodes, %d of them finished after the kill), %d no-op "
              "executions repeated (claims the failover undid)" %
              (window, sum(1 for _, st in probes if st == 503),
               sum(1 for _, st in statuses if st == 503), len(accepted), ENCODES,
               encodes_after_kill, reruns))
        assert window < 30, window
        for name in ("coordinator", "qa", "qb", "enc"):
            text = h.log_text(name)
            assert "NOPERM" not in text and "can't run" not in text, (name, text[-2000:])


if __name__ == "__main__":
    main(test_queue_sentinel)
