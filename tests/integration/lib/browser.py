"""The set-up the dashboard's browser tests share (test_ops_dashboard,
test_ops_console): node, Debian's chromium and playwright-core present, a
fresh chromium profile per run, the tests/browser script run with the
coordinator's URL and the artifacts folder, its screenshots checked."""
import os
import shutil
import signal
import sys

from lib.harness import SOURCE, finish_node_script, run_node_script, start_node_script

BROWSER_DIR = os.path.join(SOURCE, "tests", "browser")
PNG = b"\x89PNG\r\n\x1a\n"


def require_node():
    node = shutil.which("node")
    assert node, "node is missing: deploy/deps.sh nodejs"
    return node


def require_browser():
    """Fail at once, saying what to install, when a part is missing."""
    require_node()
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        raise AssertionError("playwright-core is missing: tests/run.sh installs it "
                             "(cd tests/browser && npm ci)")
    if not os.path.exists("/usr/bin/chromium"):
        raise AssertionError("chromium is missing: deploy/deps.sh test-browser")


def browser_env(h, url, profile="chromium-profile", **extra):
    """The environment of a tests/browser script: SS_URL, SS_ARTIFACTS
    (screenshots), SS_PROFILE (a new folder of the harness) and extra."""
    path = h.path(profile)
    os.makedirs(path)
    return dict(os.environ, SS_URL=url, SS_ARTIFACTS=h.artifacts, SS_PROFILE=path, **extra)


def run_browser_test(h, script, env, timeout):
    """Run a tests/browser script to its end; its output goes to ours and
    it must exit 0. Returns its output and its SUMMARY (or None)."""
    rc, out, summary = run_node_script(script, env, timeout)
    sys.stdout.write(out)
    assert rc == 0, "the browser test %s failed (see above; screenshots in %s)" % (script, h.artifacts)
    return out, summary


def start_browser_test(script, env):
    """Start a tests/browser script that runs while the test goes on;
    finish it with finish_browser_test."""
    return start_node_script(script, env)


def finish_browser_test(h, p, timeout):
    """Wait for a started script (its group ended if it outlives timeout),
    write its output, check it exited 0."""
    rc, out, _ = finish_node_script(p, timeout)
    sys.stdout.write(out)
    assert rc == 0, "the browser test failed (see above; screenshots in %s)" % h.artifacts
    return out


def stop_browser_test(p):
    """End a started script that is still running (a test failed first)."""
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def assert_screenshots(h, *names):
    """Each named screenshot in the artifacts is a PNG."""
    for name in names:
        p = os.path.join(h.artifacts, name)
        with open(p, "rb") as f:
            assert f.read(8) == PNG, p
