"""The `streamscale` CLI against a real coordinator, Redis and worker.

- Outputs follow content: a local file overwritten with another video and
  submitted again is a new job with a new output; an unchanged one keeps
  its job id (job.schema.json source_identity). A spec whose
  source_identity does not match what the worker reads fails, never
  encodes other content under that id.
"""
import hashlib
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import BIN, Api, Harness, gen_clip, main  # noqa: E402

TOKEN = "test-token"
CLI = os.path.join(BIN, "streamscale")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def run(env, *args, timeout=120, **kw):
    return subprocess.run([CLI] + list(args), env=env, capture_output=True, text=True,
                          timeout=timeout, **kw)


def submit_wait(env, *args):
    p = run(env, "submit", *args, "--wait", "--json", timeout=300)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return json.loads(p.stdout)


def check_changed_content(h, env, api):
    clip = h.path("media", "clip.mp4")
    os.makedirs(os.path.dirname(clip), exist_ok=True)
    gen_clip(clip, seconds=1, size="320x240")
    first = submit_wait(env, clip, "--ladder", "240", "--preset", "ultrafast")
    assert first["state"] == "completed", first
    ident = first["spec"]["source_identity"]
    assert ident == {"sha256": sha256(clip), "size": os.path.getsize(clip)}, ident
    with open(os.path.join(h.path("out"), first["id"], "job.json")) as f:
        doc = json.load(f)
    assert doc["source"]["sha256"] == sha256(clip) and doc["source"]["size"] == ident["size"], doc
    assert "mtime" in doc["source"], doc["source"]

    # unchanged: the same job, not a second encode
    p = run(env, "submit", clip, "--ladder", "240", "--preset", "ultrafast")
    assert p.returncode == 0 and p.stdout.strip() == first["id"], (p.stdout, p.stderr)

    # overwritten in place with another video: a new job and a new output
    other = gen_clip(h.path("media", "other.mp4"), seconds=1, size="426x240",
                     video_src="smptebars")
    os.replace(other, clip)
    second = submit_wait(env, clip, "--ladder", "240", "--preset", "ultrafast")
    assert second["id"] != first["id"], (first["id"], second["id"])
    assert second["state"] == "completed", second
    assert second["spec"]["source"] == first["spec"]["source"]
    with open(os.path.join(h.path("out"), second["id"], "job.json")) as f:
        doc2 = json.load(f)
    assert doc2["source"]["sha256"] == sha256(clip), doc2["source"]
    assert doc2["renditions"][0]["width"] == 426 and doc["renditions"][0]["width"] == 320

    # a spec naming other content than the file holds fails, not retried
    j = api.submit({"source": "file://" + clip, "ladder": [{"height": 240}], "preset": "ultrafast",
                    "source_identity": {"sha256": "0" * 64}})
    j = api.wait_state(j["id"], ("completed", "failed", "dead"), 120)
    assert j["state"] == "failed" and j["error"]["code"] == "invalid", j
    assert "changed since it was submitted" in j["error"]["message"], j["error"]
    assert j["attempts"] == 1, j


def test_cli():
    with Harness("cli") as h:
        rport = h.redis()
        url = h.coordinator(redis_port=rport, token=TOKEN)
        api = Api(url, TOKEN, harness=h)
        h.worker("w1", rport, extra={"STREAMSCALE_THREADS": "1", "STREAMSCALE_POLL_MS": "200",
                                      "STREAMSCALE_FILE_ROOTS": h.tmp})
        env = dict(os.environ, STREAMSCALE_API=url, STREAMSCALE_API_TOKEN=TOKEN)
        env.pop("STREAMSCALE_UPLOAD_TO", None)
        check_changed_content(h, env, api)


if __name__ == "__main__":
    main(test_cli)
