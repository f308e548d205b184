"""Parameter registry, resolution (YAML + -p overrides) and the notebook-side load_params."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from rmanalytics.params import (
    NOTEBOOKS,
    REGISTRY,
    NotebookParams,
    OverviewParams,
    ParameterError,
    get_model,
    load_params,
    load_yaml,
    notebook_name,
    parse_value,
    resolve,
)


def test_registry_in_chain_order():
    assert NOTEBOOKS == ("00_data_overview", "01_segmentation", "02_churn_survival", "03_loyalty_clv",
                         "04_kpi_attribution", "06_rm_review")
    assert list(REGISTRY) == list(NOTEBOOKS)
    assert all(issubclass(m, NotebookParams) for m in REGISTRY.values())


@pytest.mark.parametrize("given", ["00_data_overview", "00", "notebooks/00_data_overview.ipynb", "data_overview"])
def test_notebook_name(given):
    assert notebook_name(given) == "00_data_overview"
    assert get_model(given) is OverviewParams


def test_unknown_notebook_lists_known():
    with pytest.raises(ParameterError, match="known notebooks: 00_data_overview"):
        notebook_name("07_nothing")


@pytest.mark.parametrize("text, expected", [
    ("180", 180), ("1e2", "1e2"), ("1.5", 1.5), ("null", None), ("true", True), ("zh", "zh"),
    ("2024-06-30", dt.date(2024, 6, 30)), ("2024-13-01", "2024-13-01"), ("[1, 2]", [1, 2]), ("", ""),
])
def test_parse_value_yaml_semantics(text, expected):
    assert parse_value(text) == expected
    assert type(parse_value(text)) is type(expected)


def test_float_like_text_is_not_an_int():
    with pytest.raises(ParameterError) as err:
        resolve("00_data_overview", overrides=[("amount_bins", "1e2")])
    msg = str(err.value)
    assert "'amount_bins'" in msg and "expected int" in msg and "'1e2'" in msg


def test_float_is_not_an_int():
    with pytest.raises(ParameterError, match=r"'amount_bins': expected int, got 100.0"):
        resolve("00_data_overview", overrides=[("amount_bins", "100.0")])


def test_unknown_parameter_named_with_suggestion():
    with pytest.raises(ParameterError, match=r"unknown parameter 'amount_bin'; did you mean 'amount_bins'"):
        resolve("00_data_overview", overrides=[("amount_bin", "10")])


def test_all_problems_reported_at_once():
    with pytest.raises(ParameterError) as err:
        resolve("00_data_overview", overrides=[("foo", "1"), ("lang", "fr"), ("seed", "-1"), ("amount_bins", "2")])
    msg = str(err.value)
    for name in ("'foo'", "'lang'", "'seed'", "'amount_bins'"):
        assert name in msg


def test_impossible_values_rejected():
    with pytest.raises(ParameterError, match="amount_clip_quantile"):
        resolve("00_data_overview", overrides=[("amount_clip_quantile", "0.2")])
    with pytest.raises(ParameterError, match="observation_end"):
        resolve("00_data_overview", overrides=[("observation_end", "2024-02-30")])


def test_precedence_defaults_yaml_overrides_values(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("amount_bins: 30\nshow_rows: 3\nobservation_end: 2024-06-30\nlang: zh\n")
    p = resolve("00", f, [("show_rows", "4")], lang="en")
    assert (p.amount_bins, p.show_rows, p.lang) == (30, 4, "en")
    assert p.observation_end == dt.date(2024, 6, 30)
    assert p.amount_clip_quantile == OverviewParams().amount_clip_quantile


def test_yaml_unknown_key_and_bad_shape(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("amount_bins: 30\nhorizon_days: 90\n")
    with pytest.raises(ParameterError, match=r"unknown parameter 'horizon_days'.*p.yaml|p.yaml.*\n.*'horizon_days'"):
        load_yaml(f, "00_data_overview")
    f.write_text("- a\n- b\n")
    with pytest.raises(ParameterError, match="expected a mapping"):
        load_yaml(f, "00_data_overview")
    f.write_text("")
    assert load_yaml(f, "00_data_overview") == {}
    with pytest.raises(ParameterError, match="not found"):
        load_yaml(tmp_path / "missing.yaml", "00_data_overview")


def test_yaml_type_error_names_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("amount_bins: '30'\n")
    with pytest.raises(ParameterError, match=r"bad.yaml[\s\S]*'amount_bins': expected int, got '30'"):
        resolve("00", f)


def test_load_params_from_namespace_ignores_other_names():
    ns = {"amount_bins": 25, "observation_end": "2024-03-31", "pd": object(), "__name__": "__main__"}
    p = load_params("00_data_overview", ns)
    assert p.amount_bins == 25 and p.observation_end == dt.date(2024, 3, 31)


def test_load_params_bad_value_is_clear():
    with pytest.raises(ParameterError, match=r"'amount_bins': expected int, got 100.0"):
        load_params("00_data_overview", {"amount_bins": 100.0})


def test_load_params_finds_relative_data_dir_in_parents(tmp_path, monkeypatch):
    (tmp_path / "data" / "sample").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    p = load_params("00_data_overview", {"data_dir": "data/sample"})
    assert Path(p.data_dir) == (tmp_path / "data" / "sample").resolve()
    # a path that exists nowhere is left as given (load_tables reports it)
    assert load_params("00_data_overview", {"data_dir": "nowhere"}).data_dir == "nowhere"


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_parameters_cell_round_trip(notebook):
    """The generated parameters cell is valid Python whose values validate to the model defaults."""
    model = REGISTRY[notebook]
    src = model.parameters_cell()
    assert len(src.splitlines()) == len(model.model_fields)
    for line in src.splitlines():
        assert line.count("=") == 1, f"papermill cannot parse a line with two '=': {line}"
    ns: dict = {}
    exec(src, ns)  # noqa: S102 - our own generated source
    assert load_params(notebook, ns).model_dump() == load_params(notebook, {}).model_dump()


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_describe_lists_every_field(notebook):
    rows = REGISTRY[notebook].describe()
    assert [r["name"] for r in rows] == list(REGISTRY[notebook].model_fields)
    assert all(set(r) == {"name", "type", "default", "help"} for r in rows)


def test_describe_types_and_bounds():
    rows = {r["name"]: r for r in OverviewParams.describe()}
    assert rows["observation_end"]["type"] == "date | None"
    assert rows["lang"]["type"] == "Literal['en', 'zh']"
    assert rows["amount_bins"]["default"] == "50"
    assert "min 5" in rows["amount_bins"]["help"] and "max 500" in rows["amount_bins"]["help"]
    assert 'observation_end: "Optional[str]" = None  #' in OverviewParams.parameters_cell()
