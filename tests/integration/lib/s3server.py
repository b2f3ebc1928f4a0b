"""A real S3-compatible server for the tests: OpenStack Swift 2.30 with its
s3api + tempauth middleware (Debian packages swift-proxy, swift-object,
swift-container, swift-account; deploy/packages/test-s3.txt).

Swift verifies SigV4 signatures (a wrong secret gets 403
SignatureDoesNotMatch) and payload hashes (400 BadDigest / XAmzContentSHA256
Mismatch), does AWS-style multipart and ListObjectsV2 paging. It runs as
four processes (proxy, object, container, account servers, each with
workers = 0) from a scratch folder holding swift.conf and 1-replica rings.
Readiness is a real signed S3 call (creating a probe bucket), never a sleep.

    from lib.s3server import SwiftS3, harness
    with harness.Harness("s3") as h:
        s3 = SwiftS3(h).start()          # s3.endpoint, s3.access_key, ...
        s3.client().create_bucket(Bucket="media")

Everything is started through the harness, so it is killed by pid when the
Harness block ends.
"""
import getpass
import os
import subprocess
import time

from . import harness
from .harness import free_port, wait_until

ACCESS_KEY = "test:tester"   # tempauth user "tester" in account "test"
SECRET_KEY = "testing"
REGION = "auto"              # s3api's `location`: sign like Cloudflare R2


def _boto3():
    try:
        import boto3  # Debian's python3-boto3: run the tests with /usr/bin/python3
        import botocore.config
        return boto3, botocore.config
    except ImportError as e:
        raise AssertionError("boto3 is missing: apt-get install python3-boto3 and run the "
                             "tests with /usr/bin/python3 (%s)" % e)


class SwiftS3:
    def __init__(self, harness, name="swift", storage_domain="localhost"):
        self.h = harness
        self.name = name
        self.dir = harness.path(name)
        self.port = None
        self.endpoint = None
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION
        # With storage_domain = localhost, bucket.localhost:PORT works as a
        # virtual-host style address (curl resolves *.localhost to loopback).
        self.storage_domain = storage_domain

    def _write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def _ring(self, kind, port):
        builder = os.path.join(self.dir, kind + ".builder")
        for args in (["create", "8", "1", "1"],
                     ["add", "r1z1-127.0.0.1:%d/d1" % port, "100"],
                     ["rebalance"]):
            r = subprocess.run(["swift-ring-builder", builder] + args, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            # rebalance exits 1 with a warning on a 1-device ring; the ring is written anyway
            if r.returncode not in (0, 1):
                raise AssertionError("swift-ring-builder %s failed: %s" % (args, r.stdout[-500:]))
        if not os.path.exists(os.path.join(self.dir, kind + ".ring.gz")):
            raise AssertionError("swift-ring-builder wrote no %s ring" % kind)

    def start(self, timeout=60):
        if not os.path.exists("/usr/bin/swift-proxy-server"):
            raise AssertionError("OpenStack Swift is missing: deploy/deps.sh test-s3 "
                                 "(apt-get install swift-proxy swift-object swift-container "
                                 "swift-account)")
        os.makedirs(os.path.join(self.dir, "srv", "d1"), exist_ok=True)
        user = getpass.getuser()
        ports = {k: free_port() for k in ("proxy", "object", "container", "account")}
        self.port = ports["proxy"]
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self._write("swift.conf", "[swift-hash]\nswift_hash_path_suffix = ss-test\n"
                                  "swift_hash_path_prefix = ss\n\n"
                                  "[storage-policy:0]\nname = gold\ndefault = yes\n")
        for kind in ("object", "container", "account"):
            self._ring(kind, ports[kind])
        common = ("[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = %%d\nworkers = 0\nuser = %s\n"
                  "swift_dir = %s\ndevices = %s\nmount_check = false\nlog_level = WARNING\n"
                  "log_address = /nonexistent\n" % (user, self.dir, os.path.join(self.dir, "srv")))
        for kind in ("object", "container", "account"):
            self._write("%s-server.conf" % kind,
                        common % ports[kind] +
                        "\n[pipeline:main]\npipeline = %s-server\n\n"
                        "[app:%s-server]\nuse = egg:swift#%s\n" % (kind, kind, kind) +
                        ("\n[%s-replicator]\n\n[%s-updater]\n\n[%s-auditor]\n" % (kind, kind, kind)))
        self._write("proxy-server.conf", common % ports["proxy"] + """
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:s3api]
use = egg:swift#s3api
location = %s
storage_domain = %s
s3_acl = false
max_upload_part_num = 10000
min_segment_size = 5242880
max_bucket_listing = 1000

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = %s .admin

# tempauth insists on a swift.cache in the request; nothing listens on this
# port, so every cache lookup is a miss (no memcached needed).
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:%d

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
""" % (self.region, self.storage_domain, self.secret_key, free_port()))
        for kind in ("account", "container", "object", "proxy"):
            self.h.start("%s-%s" % (self.name, kind),
                         ["swift-%s-server" % kind, os.path.join(self.dir, "%s-server.conf" % kind), "-v"],
                         cwd=self.dir)
        t0 = time.monotonic()
        wait_until(self._probe, timeout, "Swift s3api answering a signed S3 call on port %d" % self.port,
                   interval=0.2)
        self.ready_seconds = time.monotonic() - t0
        return self

    def _probe(self):
        for kind in ("account", "container", "object", "proxy"):
            p = self.h.procs.get("%s-%s" % (self.name, kind))
            if p is not None and p.poll() is not None:
                raise AssertionError("swift-%s-server exited: %s" % (
                    kind, self.h.log_text("%s-%s" % (self.name, kind))[-2000:]))
        c = self.client(retries=0, timeout=5)
        c.create_bucket(Bucket="ss-probe")
        c.put_object(Bucket="ss-probe", Key="probe", Body=b"ok")
        return c.get_object(Bucket="ss-probe", Key="probe")["Body"].read() == b"ok"

    def client(self, secret=None, endpoint=None, retries=3, timeout=60):
        """An independent S3 client (boto3), path-style, SigV4, region auto."""
        boto3, bcfg = _boto3()
        cfg = bcfg.Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"max_attempts": retries + 1, "mode": "standard"},
                          connect_timeout=timeout, read_timeout=timeout)
        return boto3.client("s3", endpoint_url=endpoint or self.endpoint,
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=secret or self.secret_key,
                            region_name=self.region, config=cfg)

    def env(self):
        """Environment for ss_s3tool / the worker to reach this server."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
