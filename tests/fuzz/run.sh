#!/bin/sh
# run.sh — build the libFuzzer targets with clang and run each for a while,
# starting from seeds made here (the job spec examples of
# proto/job.schema.json, S3 reply shapes, URLs). Run by hand; not in ctest.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]      (default 60)
#
# Build tree: build-libfuzzer/ (ignored by git). Corpora and crashes:
# build-libfuzzer/fuzz/<target>/ — a crash leaves crash-* there and stops the run
# with a non-zero exit.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-60}
b=$root/build-libfuzzer
command -v clang >/dev/null || { echo "run.sh: needs clang (apt-get install clang)" >&2; exit 1; }
CC=clang cmake -S "$root" -B "$b" -DSS_FUZZ=ON -DSS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$b" -j"$(nproc)" --target fuzz_jobspec fuzz_log fuzz_s3xml fuzz_url >/dev/null
d=$b/fuzz
mkdir -p "$d/jobspec" "$d/log" "$d/s3xml" "$d/url"
/usr/bin/python3 - "$root/proto/job.schema.json" "$d" <<'PY'
import json, sys
schema, d = sys.argv[1], sys.argv[2]
for i, ex in enumerate(json.load(open(schema)).get("examples", [])):
    open("%s/jobspec/seed%d.json" % (d, i), "w").write(json.dumps(ex))
xml = ['<?xml version="1.0"?><Error><Code>SignatureDoesNotMatch</Code><Message>a &amp; b</Message></Error>',
       '<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k/x.m4s</Key><UploadId>2~abc</UploadId></InitiateMultipartUploadResult>',
       '<CompleteMultipartUploadResult><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e-2&quot;</ETag></CompleteMultipartUploadResult>']
for i, x in enumerate(xml):
    open("%s/s3xml/seed%d.xml" % (d, i), "w").write(x)
urls = ["https://media.example.com/a.mp4", "http://127.0.0.1:8080/x", "https://[::1]/x",
        "https://0x7f.1/x", "s3://bucket/key.mp4", "https://user:pw@10.0.0.1/x", "http://169.254.169.254/"]
for i, u in enumerate(urls):
    open("%s/url/seed%d" % (d, i), "w").write(u)
    open("%s/log/seed%d" % (d, i), "w").write("GET " + u + " HTTP/1.1\xff\xfe")
PY
for t in jobspec log s3xml url; do
    echo "== fuzz_$t ($secs s)"
    (cd "$d/$t" && "$d/fuzz_$t" -max_total_time="$secs" -max_len=4096 . 2>&1 | grep -E "^(Done|==.*ERROR|SUMMARY)" || true)
    if ls "$d/$t"/crash-* >/dev/null 2>&1; then
        echo "run.sh: fuzz_$t crashed: $(ls "$d/$t"/crash-*)" >&2
        exit 1
    fi
done
