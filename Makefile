# Two entry points (see README.md): `make demo` and `make test`. Both install what they need.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.weightgates-installed
LOGDIR ?= demo/logs
PORT ?= 6006
KERAS_OLDEST ?= 3.12.0
COMPAT_TESTS := tests/test_compat.py tests/test_train_gradients.py tests/test_callback.py

.PHONY: demo test install chromium lint typecheck test-js test-python test-legacy test-compat \
	test-browser bench clean

$(STAMP): setup.py requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || { echo "could not install chromium (needs root and Debian's package archive)"; exit 1; }; }

demo: install
	$(PY) demo/train.py --logdir $(LOGDIR)
	@echo
	@echo "TensorBoard: http://localhost:$(PORT)/#weightgates  (Ctrl+C to stop)"
	$(VENV)/bin/tensorboard --logdir $(LOGDIR) --port $(PORT) --host localhost

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check tensorboard_plugin_weightgates tests bench demo setup.py

typecheck: install
	$(VENV)/bin/mypy

test-js:
	node --test frontend/test/

test-python: install
	$(PY) -m pytest -q -m "not browser" tests

test-legacy: install
	TF_USE_LEGACY_KERAS=1 $(PY) -m pytest -q -m "keras and not browser" tests

# The callback and training-gradient tests against the oldest Keras 3 that TensorFlow accepts
# and the newest on the package index (see tests/with_keras.py).
test-compat: install
	$(PY) tests/with_keras.py $(KERAS_OLDEST) -q -p no:cacheprovider $(COMPAT_TESTS)
	$(PY) tests/with_keras.py newest -q -p no:cacheprovider $(COMPAT_TESTS)

test-browser: install chromium
	$(PY) -m pytest -q -m browser tests

test: install chromium lint typecheck test-js test-python test-legacy test-compat test-browser

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info test-artifacts
