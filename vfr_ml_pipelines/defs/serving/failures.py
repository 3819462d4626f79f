"""How the serving core's refusals reach Dagster: as a `dg.Failure` (its message, no traceback).
Defines no asset, check or job."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from vfr_ml_pipelines.lib.serving.served_models import NothingToServe


@contextmanager
def as_failure(*errors: type[Exception]) -> Iterator[None]:
    """`NothingToServe` (and any of `errors`) raised inside becomes a `dg.Failure`."""
    try:
        yield
    except (NothingToServe, *errors) as exc:
        raise dg.Failure(str(exc)) from None

