"""A baseline spec: which method, its dev-tuned grid, seeds, and the tasks (a ``glue`` section, as
for a transformer: ``glue: {suite: offline}`` runs the offline suite on the same splits).

    name: baseline-tfidf
    baseline: {method: tfidf, grid: {C: [1.0, 10.0]}, seeds: [0, 1, 2]}
    glue: {suite: offline}
"""

from __future__ import annotations

import itertools
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator

from eelbert_cli.core.baselines.methods import METHODS, get_method
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.files import check_safe_name
from eelbert_cli.core.spec import GlueSpec, StrictSpec, apply_overrides, read_spec_mapping, validation_message

GridValue = int | float | str | bool


class BaselineMethodSpec(StrictSpec):
    method: str
    # the method's default grid with these keys replaced: every combination x every seed, selected on dev
    grid: dict[str, list[GridValue]] = Field(default_factory=dict)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)

    @field_validator("method")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in METHODS:
            raise ValueError(f"unknown baseline method {value!r}; choose one of {', '.join(METHODS)}")
        return value

    @model_validator(mode="after")
    def _grid_keys(self) -> BaselineMethodSpec:
        known = get_method(self.method).default_grid
        unknown = sorted(set(self.grid) - set(known))
        if unknown:
            raise ValueError(f"{self.method} has no setting {', '.join(unknown)}; its grid keys: {', '.join(known)}")
        empty = [key for key, values in self.grid.items() if not values]
        if empty:
            raise ValueError(f"grid {', '.join(empty)}: give at least one value")
        return self

    @property
    def full_grid(self) -> dict[str, list[GridValue]]:
        return {**get_method(self.method).default_grid, **self.grid}

    def configs(self) -> list[dict[str, GridValue]]:
        grid = self.full_grid
        return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


class BaselineSpec(StrictSpec):
    name: str = Field(min_length=1)
    output_dir: str | None = None
    baseline: BaselineMethodSpec
    glue: GlueSpec

    @field_validator("name")
    @classmethod
    def _path_safe(cls, value: str) -> str:
        return check_safe_name(value, "the output directory")

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) if self.output_dir else Path("runs") / self.name


def load_baseline_spec(path: str | Path, overrides: list[str] | None = None) -> BaselineSpec:
    path = Path(path)
    raw = apply_overrides(read_spec_mapping(path), overrides or [])
    if isinstance(raw, dict) and "baseline" not in raw:
        raise EelbertError(f"{path}: no 'baseline' section (a baseline spec names baseline: {{method: ...}}; "
                           f"methods: {', '.join(METHODS)}); an experiment spec runs with eelbert glue or eelbert run")
    try:
        return BaselineSpec.model_validate(raw)
    except ValidationError as error:
        raise EelbertError(validation_message(error, str(path))) from None
