"""The Streamlit settings the dashboard ships (.streamlit/config.toml): no request to the outside at start, and
comments that match the app's limits."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from data.settings import LIMITS, REPO_ROOT

CONFIG = REPO_ROOT / ".streamlit" / "config.toml"

# Streamlit's start-up banner as `make run` reaches it, in a fresh interpreter (Streamlit's config is global):
# the external-address lookup (checkip.amazonaws.com) and the network probe are replaced by failures.
BANNER = """
import sys
from streamlit import config, net_util
from streamlit.web import bootstrap

def outside(*_args, **_kwargs):
    raise AssertionError("the banner looked up an address over the network")

net_util.get_external_ip = net_util.get_internal_ip = outside
config.get_config_options(force_reparse=True, options_from_flags={"server.address": sys.argv[1]})
assert config.get_option("server.headless")
bootstrap._print_url(is_running_hello=False)
"""


def test_the_browser_address_is_set_so_the_banner_looks_nothing_up():
    options = tomllib.loads(CONFIG.read_text())
    assert options["browser"]["serverAddress"] == "localhost"
    assert options["server"]["headless"] is True and options["browser"]["gatherUsageStats"] is False


def test_starting_on_every_address_makes_no_outside_request():
    for address in ("0.0.0.0", "localhost"):  # ADDRESS=0.0.0.0 make run, and make run
        done = subprocess.run(
            [sys.executable, "-c", BANNER, address], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert "http://localhost:8501" in done.stdout


def test_the_upload_comment_quotes_the_apps_image_limits():
    text = CONFIG.read_text()
    assert f"{LIMITS.max_image_mb} MB / {LIMITS.max_megapixels} megapixels" in text
