# One command runs the main job (make run), one runs the tests (make test).
# Both build .venv from the pins on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
VFR_ML_HOME ?= $(CURDIR)/.vfr_ml
DAGSTER_HOME ?= $(VFR_ML_HOME)/dagster
export VFR_ML_HOME DAGSTER_HOME

.PHONY: install run test ui mlflow-ui read stop bench clean

$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c requirements.lock -e ".[dev]"
	touch $@

install: $(BIN)/.installed

run: install
	@$(BIN)/vfr-ml run

# Two pytest-xdist workers (the box's two cores; README "Testing"), each taking one group of
# tests at a time (vfr_ml_pipelines_tests/worker_groups.py).
# TEST_WORKERS=0 (or PYTEST_ARGS="-n 0") runs serially.
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

ui: install
	@$(BIN)/vfr-ml ui

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri "$$($(BIN)/vfr-ml env | sed -n 's/^MLFLOW_TRACKING_URI=//p')" --host 127.0.0.1 --port 5000

read: install
	@$(BIN)/vfr-ml read-prediction $(SYMBOL) --horizon $(or $(HORIZON),1w) --model-id $(or $(MODEL_ID),default)

stop: install
	$(BIN)/vfr-ml stop

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
