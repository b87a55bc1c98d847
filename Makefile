# Two entry points: `make run` (set up and run the main job) and `make test`.
# Both install the exact versions in requirements.lock (pip constraints); `make lock` refreshes it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LOCK := requirements.lock
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels)
STAMP := $(VENV)/.installed
EXTRAS := dev,fuzz,litert,fleet

.PHONY: run test lint lock clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(FIND_LINKS) -c $(LOCK) "torch==2.13.0"
	$(PY) -m pip install -q $(FIND_LINKS) -c $(LOCK) -e ".[$(EXTRAS)]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/edgetune tune

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check edgetune tests bench tools

# Resolve the newest versions pyproject.toml allows in a scratch environment and write them to the lock.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install -q $(FIND_LINKS) "torch==2.13.0"
	.venv-lock/bin/python -m pip install -q $(FIND_LINKS) -e ".[$(EXTRAS)]"
	{ sed -n '1,2p' $(LOCK); .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^#' \
	  | sed 's/+cpu$$//' | sort -f; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf .venv-lock
	@echo "$(LOCK) refreshed: run 'make clean test' before committing it"

clean:
	rm -rf $(VENV) runs .pytest_cache
