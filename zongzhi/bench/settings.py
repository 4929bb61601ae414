"""Settings for the tracking benchmark's gunicorn: the current settings plus one bare view.

The base module is named by ``ZONGZHI_BENCH_BASE_SETTINGS`` (the settings the bench command
itself runs with), so the benchmark measures the deployment as configured.
"""

import importlib
import os

_base = importlib.import_module(os.environ.get("ZONGZHI_BENCH_BASE_SETTINGS", "zongzhi.settings"))
globals().update({name: value for name, value in vars(_base).items() if name.isupper()})

ROOT_URLCONF = "zongzhi.bench.urls"
