"""The coordinator's static side, without a browser: the dashboard files
from web_dir and finished file:// outputs under /files/<job id>/ from
output_dir. Checks the Content-Types players need (HLS, DASH, CMAF
segments, VTT, JPEG), that /files needs no token while /v1 does, byte
ranges (206, 416) and ETag revalidation (304), HEAD, and path safety: no
'..' (raw or %-encoded), no hidden files, no folders, no symlink followed
(neither a file nor a folder pointing outside), nothing outside output_dir
or web_dir, and a 404 that does not tell whether something exists."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import BIN, Api, Harness, http_json, http_request, main  # noqa: E402

TOKEN = "files-test-token"


def get(url, path, method="GET", headers=None):
    """Raw request (the path is sent exactly as given, no normalization;
    the harness checks the answer against proto/)."""
    r = http_request(method, url + path, headers=headers, timeout=10)
    return r.status, r.headers, r.raw


def finish(api, spec):
    j = api.submit(spec)
    return api.wait_state(j["id"], ("completed", "failed", "dead"), 120)


def file_roots_attacks(h, api, out, clip, rport, roots):
    """A %-escape, a symlink under a root and an empty file_roots: none
    lets a job read or write outside the folders the operator named."""
    src = {"source": "file://" + clip, "thumbnails": False}
    # 1. %6F is 'o': decoded once, the destination IS the out root, and the
    # files go there (the raw '/%6Fut/' folder must not appear)
    enc = "file://" + out[:-3] + "%6Fut/"
    f = finish(api, dict(src, destination=enc))
    assert f["state"] == "completed", f
    assert os.path.exists(os.path.join(out, f["id"], "master.m3u8"))
    assert not os.path.exists(os.path.join(h.tmp, "%6Fut")), os.listdir(h.tmp)
    # a %-escaped way out of the roots is still outside
    f = finish(api, dict(src, destination="file://" + h.tmp + "/%2e%2e/x/"))
    assert f["state"] == "failed" and f["error"]["code"] == "denied", f
    # 2. a symlink inside a root that leads out, below a leaf that does not
    # exist yet: refused, nothing written where the link points
    elsewhere = h.path("elsewhere")
    os.makedirs(elsewhere)
    os.symlink(elsewhere, os.path.join(out, "up"))
    f = finish(api, dict(src, destination="file://%s/up/evil/" % out))
    assert f["state"] == "failed" and f["error"]["code"] == "denied", f
    assert "file_roots" in f["error"]["message"], f["error"]
    assert os.listdir(elsewhere) == [], os.listdir(elsewhere)
    os.symlink(os.path.join(elsewhere, "gone"), os.path.join(out, "dangling"))
    f = finish(api, dict(src, destination="file://%s/dangling/x/" % out))
    assert f["state"] == "failed" and f["error"]["code"] == "denied", f
    # the same for a source: a link in a root to a file outside
    secret = h.path("elsewhere", "secret.mp4")
    shutil.copy(clip, secret)
    os.symlink(secret, h.path("in", "link.mp4"))
    f = finish(api, {"source": "file://" + h.path("in", "link.mp4")})
    assert f["state"] == "failed" and f["error"]["code"] == "denied", f
    # 3. no file_roots: file:// is refused, and the error names the setting
    h.stop("w")
    h.worker("w-noroots", rport, storage="file://%s/" % out,
             extra={"STREAMSCALE_FILE_ROOTS": ""})
    f = finish(api, dict(src, priority="high"))
    assert f["state"] == "failed" and f["error"]["code"] == "denied", f
    msg = f["error"]["message"]
    assert "file_roots" in msg and "STREAMSCALE_FILE_ROOTS" in msg, msg


def test_ops_files():
    with Harness("ops-files") as h:
        rport = h.redis()
        out = h.path("out")
        os.makedirs(out)
        url = h.coordinator(redis_port=rport, token=TOKEN, extra={"STREAMSCALE_OUTPUT_DIR": out})
        api = Api(url, TOKEN)
        os.makedirs(h.path("in"))
        clip = h.path("in", "clip.mp4")
        subprocess.check_call([os.path.join(BIN, "streamscale-worker"), "testclip", clip,
                               "--seconds", "2", "--size", "320x240"], stdout=subprocess.DEVNULL)
        roots = "%s:%s" % (h.path("in"), out)
        h.worker("w", rport, storage="file://%s/" % out,
                 extra={"STREAMSCALE_LOG_LEVEL": "info", "STREAMSCALE_FILE_ROOTS": roots})
        jid = api.submit({"source": "file://" + clip})["id"]
        job = api.wait_state(jid, ("completed", "failed", "dead"), 120)
        assert job["state"] == "completed", job
        jdir = os.path.join(out, jid)
        rung = sorted(d for d in os.listdir(jdir) if d.endswith("p"))[0]
        seg = sorted(f for f in os.listdir(os.path.join(jdir, rung)) if f.endswith(".m4s"))[0]

        # ---- content types, no token needed
        want = {
            "master.m3u8": "application/vnd.apple.mpegurl",
            "manifest.mpd": "application/dash+xml",
            "%s/playlist.m3u8" % rung: "application/vnd.apple.mpegurl",
            "%s/init.mp4" % rung: "video/mp4",
            "%s/%s" % (rung, seg): "video/iso.segment",
            "thumbs/poster.jpg": "image/jpeg",
            "thumbs/storyboard.vtt": "text/vtt",
            "job.json": "application/json",
        }
        for rel, ctype in want.items():
            st, hd, body = get(url, "/files/%s/%s" % (jid, rel))
            assert st == 200, (rel, st, body[:200])
            assert hd["content-type"].startswith(ctype), (rel, hd["content-type"])
            with open(os.path.join(jdir, rel), "rb") as f:
                assert body == f.read(), rel
            assert hd.get("x-content-type-options") == "nosniff"
            assert hd.get("access-control-allow-origin") == "*"
        st, hd, _ = get(url, "/files/%s/master.m3u8" % jid)
        assert "no-cache" in hd["cache-control"], hd
        # the API still needs the token
        assert http_json("GET", url + "/v1/jobs/" + jid)[0] == 401

        # ---- ranges, HEAD, ETag
        path = "/files/%s/%s/%s" % (jid, rung, seg)
        size = os.path.getsize(os.path.join(jdir, rung, seg))
        with open(os.path.join(jdir, rung, seg), "rb") as f:
            data = f.read()
        st, hd, body = get(url, path, headers={"Range": "bytes=10-99"})
        assert st == 206 and body == data[10:100], (st, len(body))
        assert hd["content-range"] == "bytes 10-99/%d" % size, hd
        st, hd, body = get(url, path, headers={"Range": "bytes=-16"})
        assert st == 206 and body == data[-16:], st
        st, hd, body = get(url, path, headers={"Range": "bytes=%d-" % (size - 5)})
        assert st == 206 and body == data[-5:], st
        st, hd, body = get(url, path, headers={"Range": "bytes=%d-" % size})
        assert st == 416 and hd["content-range"] == "bytes */%d" % size, (st, hd)
        st, hd, body = get(url, path, method="HEAD")
        assert st == 200 and body == b"" and int(hd["content-length"]) == size, (st, hd)
        etag = hd["etag"]
        st, hd, body = get(url, path, headers={"If-None-Match": etag})
        assert st == 304 and body == b"", st
        st, hd, body = get(url, path, headers={"Range": "bytes=0-3", "If-Range": '"stale"'})
        assert st == 200 and body == data, st   # changed since: the whole file

        # ---- path safety
        secret = h.path("secret.txt")
        with open(secret, "w") as f:
            f.write("outside the output folder\n")
        os.symlink(secret, os.path.join(jdir, "evil.txt"))
        os.symlink(h.tmp, os.path.join(jdir, "up"))
        os.symlink(jdir, os.path.join(out, "0123456789abcdef0123"))   # a job folder that is a link
        with open(os.path.join(jdir, ".hidden"), "w") as f:
            f.write("x")
        bad = [
            "/files/%s/../%s/master.m3u8" % (jid, jid),
            "/files/%s/%%2e%%2e/%s/master.m3u8" % (jid, jid),
            "/files/%s/..%%2f..%%2fsecret.txt" % jid,
            "/files/%s/evil.txt" % jid,
            "/files/%s/up/secret.txt" % jid,
            "/files/0123456789abcdef0123/master.m3u8",
            "/files/%s/.hidden" % jid,
            "/files/%s/%s" % (jid, rung),
            "/files/%s/" % jid,
            "/files/%s//master.m3u8" % jid,
            "/files/%s/master.m3u8%%00.txt" % jid,
            "/files/../secret.txt",
            "/files/NOTAJOBID/master.m3u8",
            "/files/%s/nope.m3u8" % jid,
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/.git/config",
            "/vendor/../../README.md",
        ]
        for p in bad:
            st, hd, body = get(url, p)
            assert st in (400, 404), (p, st, body[:200])
            assert b"outside the output folder" not in body, p
        # a missing file and a refused one answer alike
        a = get(url, "/files/%s/evil.txt" % jid)
        b = get(url, "/files/%s/nope.txt" % jid)
        assert a[0] == b[0] == 404 and a[2] == b[2], (a, b)

        # ---- the dashboard itself
        st, hd, body = get(url, "/")
        assert st == 200 and hd["content-type"].startswith("text/html"), (st, hd)
        assert b"app.js" in body
        csp = hd["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
        for p, ctype in (("/app.js", "text/javascript"), ("/style.css", "text/css"),
                         ("/vendor/hls.min.js", "text/javascript"),
                         ("/vendor/hls.js.LICENSE", "text/plain"), ("/favicon.svg", "image/svg+xml")):
            st, hd, body = get(url, p)
            assert st == 200 and hd["content-type"].startswith(ctype), (p, st, hd)
        st, hd, body = get(url, "/dashboard.json")
        assert st == 200 and b'"files":true' in body, body
        st, hd, body = get(url, "/", method="POST")
        assert st in (404, 405), st

        # ---- file_roots holds for what a token holder names (issue 18)
        file_roots_attacks(h, api, out, clip, rport, roots)

    # ---- no output_dir: /files is off, with a reason
    with Harness("ops-files-off") as h:
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN)
        st, hd, body = get(url, "/files/0123456789abcdef0123/master.m3u8")
        assert st == 404 and b"output_dir" in body, (st, body)
        st, hd, body = get(url, "/dashboard.json")
        assert b'"files":false' in body, body


if __name__ == "__main__":
    main(test_ops_files)
