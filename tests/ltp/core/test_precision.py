"""Choosing the precision to serve in, under faked CPU features."""

import json

import pytest

from ltp.core.machine import cpu_name
from ltp.core.precision import choose_dtype, native_precisions, read_cpu_features

AVX2 = {"avx2", "fma"}
ZEN4 = AVX2 | {"avx512f", "avx512_bf16", "avx512_vnni"}
SAPPHIRE = AVX2 | {"avx512f", "amx_bf16", "amx_int8", "amx_tile"}


@pytest.fixture
def artifact_dir(tmp_path):
    def make(accuracy: dict | None):
        meta = {"format_version": 1, "labels": ["a", "b"], "eval": {}}
        if accuracy is not None:
            meta["eval"]["precision"] = {k: {"accuracy": v} for k, v in accuracy.items()}
        (tmp_path / "ltp.json").write_text(json.dumps(meta))
        return tmp_path
    return make


def test_native_precisions_follow_the_flags():
    assert set(native_precisions(set())) == {"fp32"}
    assert set(native_precisions(AVX2)) == {"fp32", "int8"}  # fbgemm's AVX2 int8
    assert set(native_precisions(ZEN4)) == {"fp32", "bf16", "int8"}
    assert "amx_bf16" in native_precisions(SAPPHIRE)["bf16"]


def test_int8_chosen_where_accurate(artifact_dir):
    folder = artifact_dir({"fp32": 0.853, "bf16": 0.851, "int8": 0.850})
    dtype, why = choose_dtype(folder, cpu_features=AVX2)
    assert dtype == "int8" and "AVX2" in why


def test_no_bf16_without_native_bf16(artifact_dir):
    folder = artifact_dir({"fp32": 0.853, "bf16": 0.853, "int8": 0.80})
    assert choose_dtype(folder, cpu_features=AVX2)[0] == "fp32", "int8 lost 5 points"
    assert choose_dtype(folder, cpu_features=ZEN4)[0] == "bf16"


def test_the_fastest_accurate_precision_wins(artifact_dir):
    folder = artifact_dir({"fp32": 0.853, "bf16": 0.851, "int8": 0.850})
    timings = {"fp32": 0.030, "bf16": 0.012, "int8": 0.015}
    dtype, why = choose_dtype(folder, cpu_features=SAPPHIRE, timings=timings)
    assert dtype == "bf16" and "fastest" in why
    assert choose_dtype(folder, cpu_features=AVX2, timings=timings)[0] == "int8", "no native bf16"


def test_without_recorded_accuracy_fp32(artifact_dir):
    dtype, why = choose_dtype(artifact_dir(None), cpu_features=SAPPHIRE)
    assert dtype == "fp32" and "no accuracy" in why


def test_cpu_features_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\n")
    assert read_cpu_features(cpuinfo) == {"fpu", "avx2", "amx_bf16"}
    assert read_cpu_features(tmp_path / "missing") == set()


def test_engine_and_precision_chosen_together_by_timings(artifact_dir):
    from ltp.core.precision import choose_runtime

    folder = artifact_dir({"fp32": 0.853, "int8": 0.850, "ort-fp32": 0.853, "ort-int8": 0.851})
    timings = {"fp32": 0.030, "int8": 0.024, "ort-fp32": 0.020, "ort-int8": 0.011}
    engine, precision, why = choose_runtime(folder, cpu_features=AVX2, timings=timings,
                                            engines=("eager", "ort"))
    assert (engine, precision) == ("ort", "int8") and "ort-int8 11.0 ms" in why
    slow = timings | {"ort-int8": 0.040, "ort-fp32": 0.050}
    assert choose_runtime(folder, AVX2, slow, engines=("eager", "ort"))[:2] == ("eager", "int8")
    assert choose_runtime(folder, AVX2, timings, engines=("eager",))[:2] == ("eager", "int8")


def test_an_inaccurate_engine_is_not_served(artifact_dir):
    from ltp.core.precision import candidates, choose_runtime

    folder = artifact_dir({"fp32": 0.853, "ort-fp32": 0.853, "ort-int8": 0.82})  # int8 not recorded
    ok, left_out = candidates(folder, AVX2, engines=("eager", "ort"))
    assert set(ok) == {"fp32", "ort-fp32"} and set(left_out) == {"int8", "ort-int8"}
    engine, precision, why = choose_runtime(folder, AVX2, {"fp32": 0.03, "ort-fp32": 0.02, "ort-int8": 0.001},
                                            engines=("eager", "ort"))
    assert (engine, precision) == ("ort", "fp32") and "ort-int8" in why  # named as left out


def test_runtime_keys_round_trip():
    from ltp.core.precision import runtime_key, split_key

    assert runtime_key("eager", "int8") == "int8" and runtime_key("ort", "int8") == "ort-int8"
    assert split_key("ort-int8") == ("ort", "int8") and split_key("bf16") == ("eager", "bf16")


def test_the_cpu_is_named_with_its_family_and_model(tmp_path):
    """A bare "AMD EPYC" says neither Zen 3 nor Zen 4: reports name the generation too."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n"
                       "model\t\t: 17\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2\n")
    assert cpu_name(cpuinfo) == "AMD EPYC (family 25, model 17)"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\n")
    assert cpu_name(cpuinfo) == "Some CPU"
    assert cpu_name(tmp_path / "missing")  # what platform knows
