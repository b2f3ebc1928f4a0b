"""The README's first command on a machine that has only the build and run
packages: deploy/demo.sh --once, configured and built the demo's way into a
fresh build folder, with pkg-config seeing only the .pc files those packages
(deploy/packages/build.txt, run.txt and what they depend on, per dpkg)
installed — so a test package such as cmocka cannot be found — encoding a
short generated clip end to end (redis-server, coordinator, worker, CLI).
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib.harness import SOURCE, Harness, gen_clip, main  # noqa: E402


def installed_closure(names):
    """The installed packages among names and everything they depend on."""
    q = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Status}\t${Depends}, ${Pre-Depends}\n"],
                       capture_output=True, text=True, check=True).stdout
    deps = {}
    for line in q.splitlines():
        pkg, status, dep = (line.split("\t") + ["", ""])[:3]
        if "ok installed" in status:
            deps[pkg] = [re.sub(r"\(.*?\)", "", a).strip().split(":")[0]
                         for alt in dep.split(",") for a in alt.split("|")]
    seen, todo = set(), list(names)
    while todo:
        p = todo.pop()
        if p in seen or p not in deps:
            continue
        seen.add(p)
        todo += [d for d in deps[p] if d]
    return seen


def build_run_pkgconfig(dest):
    """A folder with links to the .pc files of the build and run packages
    (and their dependencies), for PKG_CONFIG_LIBDIR."""
    names = []
    for lst in ("build.txt", "run.txt"):
        with open(os.path.join(SOURCE, "deploy", "packages", lst)) as f:
            names += [w for line in f for w in line.split("#")[0].split()]
    pkgs = sorted(installed_closure(names))
    assert "cmake" in pkgs and "libavformat-dev" in pkgs, "build packages not installed"
    files = subprocess.run(["dpkg", "-L"] + pkgs, capture_output=True, text=True).stdout
    os.makedirs(dest)
    for path in files.splitlines():
        if path.endswith(".pc") and os.path.isfile(path):
            link = os.path.join(dest, os.path.basename(path))
            if not os.path.exists(link):
                os.symlink(path, link)
    return pkgs


def test_demo():
    with Harness("demo") as h:
        pc = h.path("pkgconfig")
        pkgs = build_run_pkgconfig(pc)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("STREAMSCALE_", "SS_", "PKG_CONFIG"))}
        env["PKG_CONFIG_LIBDIR"] = pc
        # the folder really hides the test packages (cmocka) and still has the build's
        assert "libcmocka-dev" not in pkgs
        assert subprocess.run(["pkg-config", "--exists", "cmocka"], env=env).returncode != 0
        assert subprocess.run(["pkg-config", "--exists", "libavfilter", "hiredis", "libcurl",
                               "jansson", "libevent_pthreads", "x264"], env=env).returncode == 0

        clip = gen_clip(h.path("clip.mp4"), seconds=2, size="320x240")
        build, work = h.path("build"), h.path("demo")
        p = h.start("demo", [os.path.join(SOURCE, "deploy", "demo.sh"), clip, "--once",
                             "--build", build, "--workdir", work], env=env)
        h.stopped.add("demo")    # it is meant to exit
        try:
            rc = p.wait(timeout=840)
        except subprocess.TimeoutExpired:
            raise AssertionError("demo.sh did not finish:\n" + h.log_text("demo")[-3000:])
        log = h.log_text("demo")
        assert rc == 0, "demo.sh --once exited %d:\n%s" % (rc, log[-3000:])
        assert not os.path.exists(os.path.join(build, "tests")), "the demo built the tests"
        m = re.search(r"done: job ([0-9a-f]{20})", log)
        assert m, log[-2000:]
        out = os.path.join(work, "out", m.group(1))
        for f in ("master.m3u8", "manifest.mpd", "job.json"):
            assert os.path.getsize(os.path.join(out, f)) > 0, f


if __name__ == "__main__":
    main(test_demo)
