"""Property-based tests over bad command-line values: every one ends in exit 2 and one
``error:`` line naming the option, before any work, and writes nothing.

The CLI runs in-process through :func:`caloforge.cli.main` (the same code path as the
``caloforge`` command); the subprocess tests in test_reliability_cli.py cover the real process.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caloforge.cli import fail, main
from caloforge.io import write_showers
from caloforge.validate import MAX_BATCH, MAX_ENERGY_MEV, MAX_SHOWERS

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

bad_counts = st.one_of(
    st.integers(max_value=0), st.integers(min_value=MAX_SHOWERS + 1, max_value=10**15)
)
bad_batches = st.one_of(
    st.integers(max_value=0), st.integers(min_value=MAX_BATCH + 1, max_value=10**15)
)
non_finite = st.sampled_from(["nan", "inf", "-inf", "NaN"])


def run(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["caloforge", *args])
    with pytest.raises(SystemExit) as info:
        main()
    code = info.value.code
    return (0 if code is None else int(code)), capsys.readouterr().err


def one_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def fake_run(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.json").write_text("{}")
    return run_dir


@pytest.fixture
def shower_file(tmp_path):
    rng = np.random.default_rng(1)
    return write_showers(
        tmp_path / "s.h5",
        rng.uniform(1e3, 1e4, 4),
        rng.exponential(1.0, (4, 368)).astype(np.float32),
        geometry="ds1-photons",
    )


@SETTINGS
@given(n=bad_counts)
def test_simulate_n(monkeypatch, capsys, tmp_path, n):
    out = tmp_path / "a.h5"
    code, err = run(monkeypatch, capsys, "simulate", "-d", "ds1-photons", "--n", str(n), "-o",
                    str(out))  # fmt: skip
    one_error(code, err, "--n")
    assert not out.exists()


@SETTINGS
@given(size=bad_batches)
def test_simulate_chunk_size(monkeypatch, capsys, tmp_path, size):
    code, err = run(monkeypatch, capsys, "simulate", "--chunk-size", str(size), "-o",
                    str(tmp_path / "a.h5"))  # fmt: skip
    one_error(code, err, "--chunk-size")


@SETTINGS
@given(option=st.sampled_from(["--theta", "--phi", "--offset-x", "--noise"]), value=non_finite)
def test_simulate_non_finite_floats(monkeypatch, capsys, tmp_path, option, value):
    code, err = run(monkeypatch, capsys, "simulate", option, value, "-o", str(tmp_path / "a.h5"))
    one_error(code, err, option, "finite")


@SETTINGS
@given(
    lo=st.floats(allow_nan=True, allow_infinity=True),
    hi=st.floats(min_value=MAX_ENERGY_MEV * 1.0001, allow_infinity=True),
)
def test_simulate_energies_outside_the_accepted_range(monkeypatch, capsys, tmp_path, lo, hi):
    spec = f"loguniform:{lo!r}:{hi!r}"
    code, err = run(monkeypatch, capsys, "simulate", "-d", "ds1-photons", "--n", "3", "-e", spec,
                    "-o", str(tmp_path / "a.h5"))  # fmt: skip
    one_error(code, err, "energy spectrum")
    assert not (tmp_path / "a.h5").exists()


@SETTINGS
@given(size=bad_batches, n=st.one_of(st.none(), bad_counts))
def test_generate_counts(monkeypatch, capsys, tmp_path, fake_run, size, n):
    args = ["generate", str(fake_run), "-o", str(tmp_path / "g.h5"), "--energies", "1000"]
    args += ["--batch-size", str(size)] + ([] if n is None else ["--n", str(n)])
    code, err = run(monkeypatch, capsys, *args)
    one_error(code, err)
    assert "--n" in err or "--batch-size" in err


@SETTINGS
@given(value=st.one_of(non_finite, st.floats(max_value=-1e-9).map(repr)))
def test_evaluate_threshold(monkeypatch, capsys, tmp_path, shower_file, value):
    out = tmp_path / "rep"
    code, err = run(monkeypatch, capsys, "evaluate", str(shower_file), "-r", str(shower_file),
                    "-o", str(out), "--threshold", value)  # fmt: skip
    one_error(code, err, "--threshold")
    assert not out.exists()


@SETTINGS
@given(option=st.sampled_from(["--epochs", "--max-showers"]), value=st.integers(max_value=0))
def test_train_counts(monkeypatch, capsys, tmp_path, shower_file, option, value):
    out = tmp_path / "run"
    code, err = run(monkeypatch, capsys, "train", "vae", "-d", str(shower_file), "-o", str(out),
                    option, str(value))  # fmt: skip
    one_error(code, err, option)
    assert not out.exists()


@SETTINGS
@given(n_check=st.one_of(st.integers(max_value=0), st.integers(min_value=100_001)))
def test_export_n_check(monkeypatch, capsys, tmp_path, fake_run, n_check):
    code, err = run(monkeypatch, capsys, "export", str(fake_run), "-o", str(tmp_path / "art"),
                    "--n-check", str(n_check))  # fmt: skip
    one_error(code, err, "--n-check")


@SETTINGS
@given(sizes=st.lists(bad_batches, min_size=1, max_size=3))
def test_bench_batch_sizes(monkeypatch, capsys, tmp_path, fake_run, sizes):
    code, err = run(monkeypatch, capsys, "bench", str(fake_run), "-o", str(tmp_path / "b"),
                    "--batch-sizes", ",".join(map(str, sizes)))  # fmt: skip
    one_error(code, err, "--batch-sizes")


def test_bench_unknown_baseline_detector(monkeypatch, capsys, tmp_path, fake_run):
    code, err = run(monkeypatch, capsys, "bench", str(fake_run), "-o", str(tmp_path / "b"),
                    "--baseline-detector", "ds9")  # fmt: skip
    one_error(code, err, "'ds9'", "--baseline-detector")


def test_error_text_keeps_brackets_and_colons(capsys):
    message = "install it with `pip install 'caloforge[cluster]'`; spec loguniform:-1:5 [/bold]"
    with pytest.raises(SystemExit) as info:
        fail(message)
    assert info.value.code == 2
    assert capsys.readouterr().err == f"error: {message}\n"


@SETTINGS
@given(name=st.text(alphabet="ab[]:!-_ =#@%$/", min_size=1, max_size=20))
def test_any_file_name_is_printed_verbatim(monkeypatch, capsys, tmp_path, name):
    name = name.replace("/", "")
    if name.strip(" ") in ("", ".", ".."):
        name = f"x{name}"
    missing = tmp_path / f"{name}.h5"
    code, err = run(monkeypatch, capsys, "info", str(missing))
    one_error(code, err, f"{name}.h5")


def test_simulate_too_many_chunks(monkeypatch, capsys, tmp_path):
    code, err = run(monkeypatch, capsys, "simulate", "--n", str(MAX_SHOWERS), "--chunk-size",
                    "1", "-o", str(tmp_path / "a.h5"))  # fmt: skip
    one_error(code, err, "--chunk-size", "chunks")
