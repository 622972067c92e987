# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
DEMO_MINUTES ?= 10
FASHION_MNIST := /usr/share/datasets/fashion-mnist

.PHONY: setup test demo demo-data bench bench-full clean

# The test extra brings Triton (it needs no torch: the CPU build stays) for the kernel tests in its interpreter.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION) numpy
	$(PY) -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# Fashion-MNIST from Debian when we may install it; otherwise the demo falls back to scikit-learn's digits.
demo-data:
	@if [ ! -d $(FASHION_MNIST) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	    (apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null) || true; \
	  fi; \
	fi
	@if [ ! -d $(FASHION_MNIST) ]; then \
	  echo "dataset-fashion-mnist is not installed (needs root + apt): using scikit-learn's digits"; \
	  $(PY) -m pip install -q scikit-learn; \
	fi

demo: setup demo-data
	$(PY) -m stylegan demo --outdir demo-out --minutes $(DEMO_MINUTES)

test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests

# The quick benchmark (about two minutes on 2 CPU cores); `make bench-full` for the full sweep (tens of minutes).
bench: setup
	$(PY) -m stylegan bench --cfg stylegan2 --resolution 32

bench-full: setup
	$(PY) -m stylegan bench --cfg stylegan2 --resolution 32 --full

clean:
	rm -rf $(VENV) build dist src/*.egg-info
