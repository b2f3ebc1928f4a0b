#!/bin/sh
# run.sh — build the libFuzzer targets with clang and run each for a while
# (as many targets at once as there are cores),
# starting from seeds made here (the job spec examples of
# proto/job.schema.json, S3 reply shapes, URLs, HTTP requests).
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]      (default 60; by hand)
#   tests/fuzz/run.sh --smoke                   (15 s each: the ctest fuzz/smoke,
#                                                part of tests/run.sh)
#
# Build tree: build-libfuzzer/ (ignored by git). Corpora and crashes:
# build-libfuzzer/fuzz/<target>/ — a crash leaves crash-* there and stops the run
# with a non-zero exit.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-60}
if [ "$secs" = "--smoke" ]; then secs=15; fi
b=$root/build-libfuzzer
command -v clang >/dev/null || { echo "run.sh: needs clang (apt-get install clang)" >&2; exit 1; }
CC=clang cmake -S "$root" -B "$b" -DSS_FUZZ=ON -DSS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
targets="jobspec log s3xml url http"
# shellcheck disable=SC2086
cmake --build "$b" -j"$(nproc)" --target $(printf 'fuzz_%s ' $targets) >/dev/null
d=$b/fuzz
for t in $targets; do mkdir -p "$d/$t"; done
/usr/bin/python3 - "$root/proto/job.schema.json" "$d" <<'PY'
import json, sys
schema, d = sys.argv[1], sys.argv[2]
for i, ex in enumerate(json.load(open(schema)).get("examples", [])):
    open("%s/jobspec/seed%d.json" % (d, i), "w").write(json.dumps(ex))
xml = ['<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><Message>a &amp; b</Message></Error>',
       '<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k/x.m4s</Key><UploadId>2~abc</UploadId></InitiateMultipartUploadResult>',
       '<CompleteMultipartUploadResult><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e-2&quot;</ETag></CompleteMultipartUploadResult>',
       '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>true</IsTruncated><Contents><Key>a&#233;</Key></Contents><NextContinuationToken>t</NextContinuationToken></ListBucketResult>',
       '<DeleteResult><Deleted><Key>a</Key></Deleted><Error><Key>b</Key><Code>AccessDenied</Code></Error></DeleteResult>',
       '<Error><Code><![CDATA[<x>]]></Code><!-- c --></Error>']
for i, x in enumerate(xml):
    open("%s/s3xml/seed%d.xml" % (d, i), "w").write(x)
urls = ["https://media.example.com/a.mp4", "http://127.0.0.1:8080/x", "https://[::1]/x",
        "https://0x7f.1/x", "s3://bucket/key.mp4", "https://user:pw@10.0.0.1/x", "http://169.254.169.254/"]
for i, u in enumerate(urls):
    open("%s/url/seed%d" % (d, i), "w").write(u)
    open("%s/log/seed%d" % (d, i), "w").write("GET " + u + " HTTP/1.1\xff\xfe")
auth = "Authorization: Bearer fuzz-token-0123456789\r\n"
body = '{"source":"https://media.example.com/a.mp4","webhook":{"url":"https://169.254.169.254/"}}'
reqs = ["GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n",
        "POST /v1/jobs HTTP/1.1\r\n" + auth + "Content-Length: %d\r\n\r\n%s" % (len(body), body),
        "POST /v1/jobs HTTP/1.1\r\n" + auth + "Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}GET /v1/queue HTTP/1.1\r\n\r\n",
        "POST /v1/jobs HTTP/1.1\r\nContent-Length : 2\r\n\r\n{}",
        "POST /v1/jobs HTTP/1.1\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "GET /v1/jobs/0123456789abcdef0123/events?after=1&limit=5 HTTP/1.1\r\n" + auth + "\r\n",
        "GET /files/0123456789abcdef0123/%2e%2e/x HTTP/1.0\r\nRange: bytes=0-1\r\n\r\n",
        "DELETE /v1/jobs/0123456789abcdef0123 HTTP/1.1\r\n" + auth + " folded\r\n\r\n"]
for i, r in enumerate(reqs):
    open("%s/http/seed%d" % (d, i), "w").write(r)
PY
# Each target is one process on one core: run as many at once as there are
# cores (in lanes; each target still gets its full time), then report.
lanes=$(nproc)
[ "$lanes" -ge 1 ] || lanes=1
run_target() {
    rc=0
    (cd "$d/$1" && "$d/fuzz_$1" -max_total_time="$secs" -max_len=4096 . >"$d/$1.log" 2>&1) || rc=$?
    echo "$rc" >"$d/$1.rc"
}
rm -f "$d"/*.rc
i=0
pids=""
while [ "$i" -lt "$lanes" ]; do
    lane=""
    k=0
    for t in $targets; do
        [ $((k % lanes)) = "$i" ] && lane="$lane $t"
        k=$((k + 1))
    done
    if [ -n "$lane" ]; then
        (for t in $lane; do run_target "$t"; done) &
        pids="$pids $!"
    fi
    i=$((i + 1))
done
# shellcheck disable=SC2086
wait $pids
status=0
for t in $targets; do
    echo "== fuzz_$t ($secs s)"
    rc=$(cat "$d/$t.rc" 2>/dev/null || echo "no exit status")
    grep -E "^(Done|==.*ERROR|SUMMARY)" "$d/$t.log" || true
    if [ "$rc" != 0 ] || ls "$d/$t"/crash-* "$d/$t"/leak-* "$d/$t"/timeout-* "$d/$t"/oom-* >/dev/null 2>&1; then
        echo "run.sh: fuzz_$t failed (exit $rc); its log: $d/$t.log; inputs: $(ls "$d/$t" | grep -E '^(crash|leak|timeout|oom)-' | tr '\n' ' ')" >&2
        tail -40 "$d/$t.log" >&2
        status=1
    fi
done
exit $status
