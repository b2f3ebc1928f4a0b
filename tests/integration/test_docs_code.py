"""The docs against the code, where that is cheap (no servers; a second).

  1. every config key of each daemon (the OPT tables in worker/wmain.c and
     coordinator/coord_main.c) is in its example config
     (deploy/*.conf.example) or named in README.md/docs/; every key an
     example config sets or shows exists; both examples name one Redis;
  2. the error codes coordinator/*.c answers with are the ones
     proto/openapi.yaml's Error documents, each with its own status;
  3. proto/redis.md names every helper of common/lua/_lib.lua and has a
     section for every script;
  4. every `--flag` docs/MEDIA.md gives `streamscale-worker encode` exists;
  5. no integration test talks HTTP to the daemons except through the
     harness (lib/harness.http_request checks every answer against proto/).
"""
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import SOURCE, main  # noqa: E402
from lib import contract  # noqa: E402


def read(*parts):
    with open(os.path.join(SOURCE, *parts)) as f:
        return f.read()


def keys_of(c_file):
    return re.findall(r'OPT\("([a-z0-9_]+)"', read(c_file))


def example_keys(conf):
    """key -> value for `key = value` and `# key = value` lines."""
    out = {}
    for line in read("deploy", conf).splitlines():
        m = re.match(r"^#?\s*([a-z][a-z0-9_]*)\s*=\s*(\S*)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def test_docs_code():
    problems = []
    docs = read("README.md") + "".join(read(p) for p in sorted(
        glob.glob(os.path.join(SOURCE, "docs", "*.md"))))

    # 1. config keys
    examples = {}
    for src, conf in (("worker/wmain.c", "worker.conf.example"),
                      ("coordinator/coord_main.c", "coordinator.conf.example")):
        keys = keys_of(src)
        assert len(keys) > 10, (src, keys)
        ex = examples[conf] = example_keys(conf)
        for k in keys:
            if k not in ex and not re.search(r"\b%s\b" % re.escape(k), docs):
                problems.append("%s: key %r is in neither deploy/%s nor the docs" % (src, k, conf))
        for k in ex:
            if k not in keys:
                problems.append("deploy/%s: key %r does not exist in %s" % (conf, k, src))
    wr, cr = examples["worker.conf.example"].get("redis"), \
        examples["coordinator.conf.example"].get("redis")
    if wr != cr:
        problems.append("the example configs point at different Redis: worker %r, coordinator %r"
                        % (wr, cr))

    # 2. error codes
    documented = contract.ERROR_CODES
    enum = contract.get().openapi["components"]["schemas"]["Error"]["properties"]["error"][
        "properties"]["code"]["enum"]
    if sorted(enum) != sorted(documented.values()):
        problems.append("openapi Error codes %s, the harness knows %s" % (
            sorted(enum), sorted(documented.values())))
    for f in sorted(glob.glob(os.path.join(SOURCE, "coordinator", "*.c"))):
        for st, code in re.findall(r'http_reply_error\(\s*req,\s*(\d{3}),\s*"([a-z_]+)"',
                                   open(f).read()):
            if documented.get(int(st)) != code:
                problems.append("%s answers %s %r; openapi documents %r for %s" % (
                    os.path.basename(f), st, code, documented.get(int(st)), st))

    # 3. redis.md
    rmd = read("proto", "redis.md")
    helpers = re.findall(r"^local function ([a-z_]+)", read("common", "lua", "_lib.lua"), re.M)
    m = re.search(r"\(helpers: ([^)]*)\)", rmd)
    named = re.findall(r"`([a-z_]+)`", m.group(1)) if m else []
    if sorted(named) != sorted(helpers):
        problems.append("proto/redis.md lists the helpers %s; _lib.lua has %s" % (
            sorted(named), sorted(helpers)))
    sections = " ".join(re.findall(r"^### (.*)$", rmd, re.M))
    for lua in sorted(glob.glob(os.path.join(SOURCE, "common", "lua", "*.lua"))):
        name = os.path.basename(lua)[:-4]
        if not name.startswith("_") and not re.search(r"\b%s\b" % name, sections):
            problems.append("proto/redis.md has no section for common/lua/%s.lua" % name)

    # 4. encode's flags
    flags = set(re.findall(r'"(--[a-z][a-z-]*)"', read("worker", "encode_cmd.c")))
    for flag in sorted(set(re.findall(r"`(--[a-z][a-z-]*)", read("docs", "MEDIA.md")))):
        if flag not in flags:
            problems.append("docs/MEDIA.md documents %s, which `encode` does not take" % flag)

    # 5. one HTTP client for the daemons: the harness's
    for f in sorted(glob.glob(os.path.join(SOURCE, "tests", "integration", "test_*.py"))):
        if os.path.basename(f) == "test_docs_code.py":
            continue
        text = open(f).read()
        for bad in ("urllib.request", "http.client", "urlopen", "import requests"):
            if bad in text:
                problems.append("%s uses %s: talk to the daemons through lib.harness's "
                                "http_request/http_json (they check answers against proto/)"
                                % (os.path.basename(f), bad))

    assert not problems, "docs and code disagree:\n  " + "\n  ".join(problems)


if __name__ == "__main__":
    main(test_docs_code)
