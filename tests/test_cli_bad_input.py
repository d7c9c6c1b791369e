"""Bad user input to ``gim-brain fit`` / ``gim-brain features``: exit code 2, a message naming the
parameter at fault, no traceback, and (for ``fit``) nothing built before the check."""

import json

import pytest
from test_features_fit_cli import _fit, tiny  # noqa: F401  (the tiny dataset fixture, fit helper)

from gim_brain.cli.main import main
from gim_brain.encoding.backend import _cuda_available


def _features(manifest, tmp, *extra):
    return main(["features", "--manifest", str(manifest), "--data-root", str(tmp / "data"),
                 "--out", str(tmp / "feats"), "--no-progress", *extra])


@pytest.mark.parametrize("extra, names", [
    (["--features", "ar-control[horizon=9]"], "'horizon'"),
    (["--features", "ar-control[gap=0]"], "'gap'"),
    (["--features", "ar-control[n_lags=0]"], "'n_lags'"),
    (["--features", "ar-control[n_components=zero]"], "'n_components'"),
    (["--features", "wordrate", "--features", "ar-control", "--param", "n_components=0"],
     "'n_components'"),
    (["--features", "wordrate[nosuch=1]"], "'nosuch'"),
    (["--features", "wordrate+"], "cannot read"),
    (["--features", "wordrate[gap]"], "'gap'"),
    (["--features", "wordrate", "--n-folds", "1"], "--n-folds"),
    (["--features", "wordrate", "--n-permutations", "-1"], "--n-permutations"),
    (["--features", "wordrate", "--backend", "cupy-magic"], "--backend"),
    (["--features", "wordrate", "--train-stories", "s1"], "at least 2 training stories"),
    (["--features", "wordrate", "--delays", "1,40"], "--delays 40"),
    (["--features", "wordrate", "--delays", "-5000"], "--delays -5000"),
])
def test_fit_rejects_bad_input_before_any_work(tiny, capsys, extra, names):
    manifest, tmp = tiny
    assert _fit(manifest, tmp, *extra) == 2
    err = capsys.readouterr().err
    assert names in err and "Traceback" not in err
    assert not (tmp / "run").exists()  # nothing fitted or written
    assert not (tmp / "cache").exists()  # nothing built


@pytest.mark.skipif(_cuda_available(), reason="a CUDA GPU is visible here")
def test_fit_rejects_torch_cuda_without_gpu(tiny, capsys):
    manifest, tmp = tiny
    assert _fit(manifest, tmp, "--features", "wordrate", "--backend", "torch_cuda") == 2
    err = capsys.readouterr().err
    assert "--backend" in err and "CUDA" in err


@pytest.mark.parametrize("flag, value, names", [
    ("--model", str("/no/such/folder/model.gguf"), "does not exist"),
    ("--device", "bogus", "device='bogus'"),
])
def test_fit_bad_model_or_device_keeps_fitted_specs(tiny, capsys, flag, value, names):
    manifest, tmp = tiny
    rc = _fit(manifest, tmp, "--features", "wordrate", "--features", "llm", flag, value)
    assert rc == 2
    err = capsys.readouterr().err
    assert "SPEC 'llm'" in err and names in err and "Traceback" not in err
    summary = json.loads((tmp / "run" / "summary.json").read_text())
    assert list(summary["feature_sets"]) == ["wordrate"]  # the SPEC fitted before stays written


@pytest.mark.parametrize("extra, names", [
    (["--space", "wordrate+"], "cannot read"),
    (["--space", "ar-control"], "--subject"),
    (["--space", "wordrate", "--subject", "S9"], "unknown subject 'S9'"),
    (["--space", "ar-control[gap=0]", "--subject", "S1"], "'gap'"),
    (["--space", "ar-control[horizon=4;gap=4]", "--subject", "S1"], "'horizon'"),
    (["--space", "ar-control[horizon=0]", "--subject", "S1"], "'horizon'"),
    (["--space", "ngram-induction", "--param", "n_lags=0", "--subject", "S1"], "'n_lags'"),
    (["--space", "gim-induction-random[n_components=0]", "--subject", "S1"], "'n_components'"),
    (["--space", "gim-induction[similarity=cosine]", "--subject", "S1"], "'similarity'"),
    (["--space", "gim-induction[tau=0]", "--subject", "S1"], "'tau'"),
    (["--space", "ngram-induction[min_length=0]", "--subject", "S1"], "'min_length'"),
    (["--space", "gim-copy[window=0]"], "'window'"),
    (["--space", "wordrate", "--param", "gap=3"], "'gap'"),
    (["--space", "wordrate", "--delays", "2,1000"], "--delays 1000"),
    (["--space", "wordrate", "--delays", "-40"], "--delays -40"),
])
def test_features_rejects_bad_input(tiny, capsys, extra, names):
    manifest, tmp = tiny
    assert _features(manifest, tmp, *extra) == 2
    err = capsys.readouterr().err
    assert names in err and "Traceback" not in err
    assert not (tmp / "feats").exists()


def test_features_negative_delays_are_allowed(tiny):
    manifest, tmp = tiny
    assert _features(manifest, tmp, "--space", "wordrate", "--delays=-1,0,1") == 0
    desc = json.loads((tmp / "feats" / "features.json").read_text())
    assert desc["delays"] == [-1, 0, 1]


def test_resolve_params_checks_induction_values():
    from gim_brain.features import FeatureParameterError, resolve_params

    assert resolve_params("ar-control", {"gap": "6", "horizon": "5"})["horizon"] == 5
    for bad, name in [({"gap": "0"}, "'gap'"), ({"horizon": "4"}, "'horizon'"),
                      ({"n_lags": 0}, "'n_lags'"), ({"n_components": -3}, "'n_components'"),
                      ({"gap": 2, "horizon": 2}, "'horizon'")]:
        with pytest.raises(FeatureParameterError, match=name):
            resolve_params("ar-control", bad)
