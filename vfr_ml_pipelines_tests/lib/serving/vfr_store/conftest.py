"""Each store test module gets a migrated database of its own (named after the module), and
every test starts with the module's TABLES emptied."""

from __future__ import annotations

import pytest

from vfr_ml_pipelines_tests.lib.serving.outcome_rows import emptied


@pytest.fixture(scope="module")
def module_engine(make_engine, request):
    return make_engine(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture
def db(module_engine, request):
    return emptied(module_engine, request.module.TABLES)
