"""The tiny model's loader, card checks, inference, training and weight persistence."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from _tools import load_script

from agent import config
from agent.detect.tflite import (
    DELEGATE_NOTICE,
    DIRECT_BATCH,
    TINY_SHA256,
    ModelCard,
    TinyModel,
    load_interpreter,
    load_model,
    load_or_explain,
    models_dir,
    no_runtime,
    without_delegate_notice,
)
from agent.errors import ModelError

REPO = Path(__file__).resolve().parents[2]


def _build_script() -> ModuleType:
    """models/build_tiny.py's numpy-only data generators (TensorFlow is imported lazily)."""
    return load_script(REPO / "models" / "build_tiny.py")


@pytest.fixture(scope="module")
def build() -> ModuleType:
    return _build_script()


@pytest.fixture
def model() -> TinyModel:
    return load_model("tiny")


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the shipped card and model in tmp_path; returns the card path."""
    src = models_dir()
    for name in ("tiny.json", "tiny.tflite"):
        shutil.copy(src / name, tmp_path / name)
    return tmp_path / "tiny.json"


def _windows(build: ModuleType, n: int, seed: int) -> np.ndarray:
    raw, _ = build.generate_normal(seed, n)
    out: np.ndarray = build.scale_windows(raw)
    return out


def _rewrite_card(card_path: Path, **changes: Any) -> None:
    raw = json.loads(card_path.read_text())
    raw.update(changes)
    card_path.write_text(json.dumps(raw))


def test_models_dir_is_the_repo_models_in_a_checkout() -> None:
    assert models_dir() == REPO / "models"


def test_shipped_model_loads_and_matches_its_card(model: TinyModel) -> None:
    card = model.card
    data = card.model_path.read_bytes()
    assert card.name == "tiny" and card.file == "tiny.tflite"
    assert len(data) == card.size_bytes < 64 * 1024
    assert hashlib.sha256(data).hexdigest() == card.sha256
    assert set(card.signatures) == {"infer", "train", "get_weights", "set_weights"}
    assert [(s.name, s.shape, s.dtype) for s in card.inputs] == [
        ("x", (-1, card.window_length), "float32")
    ]
    assert card.signatures["train"].inputs[1].shape == (card.train_batch, card.window_length)
    assert not [op for op in card.ops if op.startswith("CUSTOM") or "FLEX" in op]
    assert card.oldest_runtime and card.evaluation and card.training_data


def test_card_figures_reproduce_on_the_shipped_file(model: TinyModel, build: ModuleType) -> None:
    """The held-out normal MSE in the card comes from this very file and generator."""
    td = model.card.training_data
    held = _windows(build, int(td["heldout_windows"]), int(td["heldout_seed"]))
    scores = model.infer(held)
    ev = model.card.evaluation
    assert float(scores.astype(np.float64).mean()) == pytest.approx(ev["normal_mse_mean"], 1e-5)
    assert float(np.quantile(scores, 0.99)) == pytest.approx(ev["normal_mse_p99"], 1e-5)


def test_scaling_matches_the_build(model: TinyModel, build: ModuleType) -> None:
    raw, _ = build.generate_normal(1, 64)
    np.testing.assert_array_equal(model.scale(raw), build.scale_windows(raw))
    flat = model.scale(np.full((1, model.window), 5.0))
    assert np.all(flat == 0.0)


def test_spikes_score_higher_than_normal(model: TinyModel, build: ModuleType) -> None:
    held = _windows(build, 512, 99)
    spiked = build.inject_anomalies(held, 100, "spike")
    assert np.median(model.infer(spiked)) > 5 * np.median(model.infer(held))


def test_batched_infer_equals_one_at_a_time(model: TinyModel, build: ModuleType) -> None:
    x = _windows(build, 1024 + 7, 5)
    batched = model.run(x)
    singles = [model.run(x[i : i + 1]) for i in range(len(x))]
    one_score = np.concatenate([s["score"] for s in singles])
    one_recon = np.concatenate([s["recon"] for s in singles])
    assert batched["score"].shape == (len(x),) and batched["recon"].shape == x.shape
    np.testing.assert_allclose(batched["score"], one_score, rtol=0, atol=1e-6)
    np.testing.assert_allclose(batched["recon"], one_recon, rtol=0, atol=1e-6)


def test_a_live_sample_s_direct_call_equals_the_signature_runner(
    model: TinyModel, build: ModuleType
) -> None:
    """A live sample's few windows (one per stream) go straight to the interpreter, padded
    to the batch it stays allocated for: the same bits as the signature runner for every
    batch size up to it, also after a long batch or a training step re-allocated it."""
    assert model._direct is not None  # this LiteRT has the handle: the fast path is tested
    x = _windows(build, 60, 8)
    for n in range(1, DIRECT_BATCH + 1):
        expected = model.run(x[:n])["score"]
        assert np.array_equal(model.infer(x[:n]), expected), n
        assert np.array_equal(model.infer(x[n : 2 * n]), model.run(x[n : 2 * n])["score"]), n
    model.infer(x[:3])
    assert model._direct_ready  # the direct call was taken
    long = model.infer(x)  # a long batch: the runner, which re-allocates
    assert not model._direct_ready
    assert np.array_equal(model.infer(x[:5]), long[:5])  # within 1e-6 promised; here equal
    weights = model.get_weights()
    model.train(model.scale(np.zeros((model.card.train_batch, model.window))), 0.0)
    model.set_weights(weights)
    assert not model._direct_ready
    assert np.array_equal(model.infer(x[5:9]), model.run(x[5:9])["score"])


def test_chunked_batch_equals_single_invoke(model: TinyModel, build: ModuleType) -> None:
    x = _windows(build, 100, 6)
    whole = model.run(x)["score"]
    np.testing.assert_allclose(model.run(x, chunk=16)["score"], whole, rtol=0, atol=1e-6)


def test_infer_rejects_wrong_window_length(model: TinyModel) -> None:
    with pytest.raises(ValueError, match="expected scaled windows"):
        model.infer(np.zeros((2, model.window + 1), np.float32))


def test_train_steps_reduce_loss(model: TinyModel, build: ModuleType) -> None:
    """A new kind of normal (a fixed chirp with noise) is learned over a few steps."""
    rng = np.random.default_rng(3)
    t = np.arange(model.window)
    raw = np.sin(0.02 * t**2)[None, :] + rng.normal(0, 0.05, (model.card.train_batch, model.window))
    x = model.scale(raw)
    before = model.infer(x).mean()
    losses = [model.train(x, 0.01) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]
    assert model.infer(x).mean() < 0.5 * before
    assert losses[0] == pytest.approx(before, rel=1e-5)  # loss is taken before the step


def test_train_rejects_wrong_batch(model: TinyModel) -> None:
    with pytest.raises(ValueError, match="expected scaled windows"):
        model.train(np.zeros((model.card.train_batch - 1, model.window), np.float32), 0.01)


def test_weights_blob_round_trip_on_a_fresh_interpreter(
    model: TinyModel, build: ModuleType
) -> None:
    x = _windows(build, model.card.train_batch, 11)
    fresh_out = model.reconstruct(x)
    for _ in range(5):
        model.train(x, 0.01)
    trained_out = model.reconstruct(x)
    blob = model.weights_blob()
    assert isinstance(blob, bytes)

    other = load_model("tiny")
    np.testing.assert_array_equal(other.reconstruct(x), fresh_out)  # file weights at start
    other.load_weights_blob(blob)
    np.testing.assert_array_equal(other.reconstruct(x), trained_out)
    assert not np.array_equal(trained_out, fresh_out)
    got = other.get_weights()
    for name, arr in model.get_weights().items():
        np.testing.assert_array_equal(got[name], arr)


def test_set_weights_rejects_bad_names_and_shapes(model: TinyModel) -> None:
    w = model.get_weights()
    with pytest.raises(ModelError, match="tiny.tflite"):
        model.set_weights({k: v for k, v in w.items() if k != "w0"})
    w["w0"] = w["w0"][:, :3]
    with pytest.raises(ModelError, match="weight w0 shape"):
        model.set_weights(w)
    with pytest.raises(ModelError, match="unreadable weights blob"):
        model.load_weights_blob(b"not a zip")


def test_truncated_copy(copy: Path) -> None:
    tfl = copy.with_suffix(".tflite")
    tfl.write_bytes(tfl.read_bytes()[:1000])
    with pytest.raises(ModelError, match="truncated") as err:
        load_model(copy)
    assert err.value.path == str(tfl)


def test_truncated_copy_whose_card_agrees_fails_in_the_interpreter(copy: Path) -> None:
    tfl = copy.with_suffix(".tflite")
    data = tfl.read_bytes()[:1000]
    tfl.write_bytes(data)
    _rewrite_card(copy, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    with pytest.raises(ModelError, match="cannot load") as err:
        load_model(copy, own=True)
    assert err.value.path == str(tfl)


def test_wrong_hash_copy(copy: Path) -> None:
    tfl = copy.with_suffix(".tflite")
    data = bytearray(tfl.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tfl.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256") as err:
        load_model(tfl)  # a .tflite path finds its card next to it
    assert err.value.path == str(tfl)


def test_a_card_of_the_older_whole_window_scaling_is_refused(copy: Path) -> None:
    """A model trained on windows z-scored as a whole would be fed windows in units of their
    context and score nonsense: its card is refused, naming the scaling."""
    window = {"length": 32, "scaling": "zscore", "min_std": 0.001}
    _rewrite_card(copy, window=window)
    with pytest.raises(ModelError, match="'zscore'") as err:
        load_model(copy, own=True)
    assert err.value.path == str(copy)


def test_the_newest_sample_is_read_against_its_context(model: TinyModel) -> None:
    """A step at the end of a noisy window stands out as far as it really is (a whole-
    window z-score would cap it near sqrt(W - 1)), clipped; the context is scaled to unit
    spread, or to a tenth of its level when it varies less than that."""
    rng = np.random.default_rng(3)
    raw = rng.normal(0.0, 1.0, model.window)
    raw[-1] = raw[:-1].mean() + 50.0 * raw[:-1].std()
    x = model.scale(raw[None, :])[0]
    context = model.scaling.context
    assert abs(float(x[:context].std()) - 1.0) < 1e-5
    assert abs(float(x[-1]) - 50.0) < 1e-3
    raw[-1] = 1e9
    assert model.scale(raw[None, :])[0, -1] == model.scaling.clip
    high = 1000.0 + raw  # the same jitter around 1,000: less than a tenth of the level
    high[-1] = 1000.0 + raw[:-1].mean() + 50.0
    x = model.scale(high[None, :])[0]
    assert model.scaling.rel_std == 0.1
    assert abs(float(x[-1]) - 50.0 / (0.1 * np.mean(high[:context]))) < 1e-3


def test_missing_file(copy: Path) -> None:
    copy.with_suffix(".tflite").unlink()
    with pytest.raises(ModelError, match="missing") as err:
        load_model(copy)
    assert err.value.path == str(copy.with_suffix(".tflite"))


def test_missing_card(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="card not found") as err:
        load_model(tmp_path / "nope.json")
    assert err.value.path == str(tmp_path / "nope.json")


def test_card_spec_mismatch(copy: Path) -> None:
    raw = json.loads(copy.read_text())
    raw["signatures"]["train"]["inputs"]["x"]["shape"] = [16, 32]
    copy.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match=r"signature train inputs: card .*x \[16, 32\]") as err:
        load_model(copy)
    assert err.value.path == str(copy.with_suffix(".tflite"))
    assert "tiny.json" in str(err.value)


def test_card_missing_signature(copy: Path) -> None:
    raw = json.loads(copy.read_text())
    del raw["signatures"]["get_weights"]
    copy.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="signatures: card"):
        load_model(copy)


def test_card_inputs_must_agree_with_infer_signature(copy: Path) -> None:
    raw = json.loads(copy.read_text())
    raw["inputs"][0]["shape"] = [-1, 16]
    copy.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="differ from signature infer") as err:
        ModelCard.from_file(copy)
    assert err.value.path == str(copy)


def test_card_missing_key(copy: Path) -> None:
    raw = json.loads(copy.read_text())
    del raw["sha256"]
    copy.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="bad model card.*sha256"):
        load_model(copy)


def test_no_runtime_is_a_model_error(copy: Path) -> None:
    with pytest.raises(ModelError) as err:
        load_model(copy, runtimes=("vigil_no_such_runtime.interpreter",))
    assert err.value.reason == no_runtime()
    assert err.value.path == str(copy.with_suffix(".tflite"))


def test_litert_runtime_is_used() -> None:
    interp = load_interpreter(
        models_dir() / "tiny.tflite", runtimes=("ai_edge_litert.interpreter",)
    )
    assert type(interp).__module__.startswith("ai_edge_litert")


def test_tflite_runtime_fallback(model: TinyModel, build: ModuleType) -> None:
    """Termux's python-tflite-runtime: same file, same outputs (skipped where it is absent)."""
    pytest.importorskip("tflite_runtime.interpreter")
    other = load_model("tiny", runtimes=("tflite_runtime.interpreter",))
    x = _windows(build, 64, 12)
    np.testing.assert_allclose(other.infer(x), model.infer(x), rtol=0, atol=1e-6)


# -- the shipped model is pinned: a valid other model needs the config's explicit opt-in -------


def test_the_pinned_sha256_is_the_shipped_file() -> None:
    """A rebuild that forgets to update ``TINY_SHA256`` (and the card) fails here."""
    data = (models_dir() / "tiny.tflite").read_bytes()
    assert hashlib.sha256(data).hexdigest() == TINY_SHA256
    assert ModelCard.from_file(models_dir() / "tiny.json").sha256 == TINY_SHA256


def _other_model(card: Path) -> Path:
    """The copy turned into another valid model (its output bias moved) with a card that
    agrees with it: every card check passes. Returns its .tflite path."""
    tfl = card.with_suffix(".tflite")
    data = tfl.read_bytes()
    bias = load_model(card).get_weights()["b3"].astype("<f4").tobytes()
    assert data.count(bias) == 1
    data = data.replace(bias, (np.frombuffer(bias, "<f4") + 0.5).astype("<f4").tobytes())
    tfl.write_bytes(data)
    _rewrite_card(card, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    return tfl


def test_a_swapped_model_and_card_are_refused(copy: Path, build: ModuleType) -> None:
    tfl = _other_model(copy)
    with pytest.raises(ModelError) as err:
        load_model(copy)
    assert err.value.path == str(tfl)
    digest = hashlib.sha256(tfl.read_bytes()).hexdigest()
    assert f"is not the shipped model (sha256 {digest}, shipped {TINY_SHA256})" in str(err.value)
    assert "own_model = true" in str(err.value)
    mine = load_model(tfl, own=True)  # the explicit opt-in
    assert mine.sha256 == digest
    x = _windows(build, 8, 3)
    assert not np.allclose(mine.infer(x), load_model("tiny").infer(x))


def test_own_model_through_the_config(
    tmp_path: Path, copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tfl = _other_model(copy)
    path = tmp_path / "config.toml"
    path.write_text(f'[anomaly]\nmodel = "{tfl}"\nown_model = true\n')
    mine = config.load(path).anomaly
    model = load_or_explain(mine.model, own=mine.own_model)
    assert model is not None and model.card.model_path == tfl
    path.write_text(f'[anomaly]\nmodel = "{tfl}"\n')  # without the opt-in
    unsure = config.load(path).anomaly
    assert load_or_explain(unsure.model, own=unsure.own_model) is None
    assert "is not the shipped model" in caplog.text
    shipped = config.load(tmp_path / "none.toml").anomaly  # the defaults
    default = load_or_explain(shipped.model, own=shipped.own_model)
    assert default is not None and default.sha256 == TINY_SHA256


def test_a_vigil_command_does_not_print_the_runtimes_delegate_notice() -> None:
    """LiteRT's C++ prints the notice once a process, at an interpreter's first run: a
    process of its own, so that no earlier test has printed it already."""
    code = (
        "import numpy as np; from agent.detect.tflite import load_model; "
        "m = load_model(); m.run(m.scale(np.random.default_rng(0).normal(size=(4, m.window))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert DELEGATE_NOTICE not in done.stderr, done.stderr


def test_lines_written_while_the_notice_is_held_come_out_without_it(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with without_delegate_notice():
        os.write(2, DELEGATE_NOTICE + b"\n")
        os.write(2, b"another thread's line\n")
    assert capfd.readouterr().err == "another thread's line\n"


def test_without_a_temporary_folder_the_notice_is_let_through(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def refused() -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("agent.detect.tflite.tempfile.TemporaryFile", refused)
    with without_delegate_notice():
        os.write(2, b"a line\n")
    assert capfd.readouterr().err == "a line\n"
