import os

import pytest

from ner.config import Config


def test_overrides_parse_json_and_keep_types():
    config = Config().with_overrides(["lstm_units=64", "use_crf=false", "feature_columns=[1, 2]",
                                      "learning_rate=1", "encoder=bilstm"])
    assert config.lstm_units == 64 and config.use_crf is False and config.feature_columns == [1, 2]
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)


@pytest.mark.parametrize("assignment, message", [
    ("nope=1", "unknown config key"),
    ("lstm_units", "expected key=value"),
    ("lstm_units=abc", "expected a int"),
    ("encoder=lstm", "expected one of"),
    ("mha_norm=middle", "mha_norm='middle': expected one of post, pre, none"),
    ("dropout=1.5", "0 <= dropout < 1"),
    ("feature_columns=[0]", "column numbers >= 1"),
    ("attention_dropout=1", "0 <= attention_dropout < 1"),
    ("qrnn_kernel=0", "expected a positive integer"),
    ("highway_layers=-1", "expected 0 or more"),
    ("mha_units=-1", "mha_units=-1: expected 0"),
])
def test_bad_overrides_name_the_problem(assignment, message):
    with pytest.raises(ValueError, match=message):
        Config().with_overrides([assignment])


def test_attention_heads_must_divide_the_width_of_the_encoder_in_use():
    with pytest.raises(ValueError, match="multiple of transformer_heads=3"):
        Config(encoder="bilstm+transformer", transformer_heads=3)
    with pytest.raises(ValueError, match=r"mha_heads=4: expected a divisor of the attention's width 10"):
        Config(encoder="bilstm+mha", lstm_units=5)
    with pytest.raises(ValueError, match=r"mha_heads=4: expected a divisor of the attention's width 6"):
        Config(encoder="bilstm+mha", mha_units=6)
    Config(encoder="bilstm+mha", lstm_units=5, mha_units=8)  # a narrower attention sets its own width
    Config(encoder="qrnn", transformer_heads=3, lstm_units=5)  # keys of other encoders are not checked


def test_save_load_round_trip(tmp_path):
    config = Config(lstm_layers=2, feature_columns=[1])
    config.save(str(tmp_path / "config.json"))
    assert Config.load(str(tmp_path / "config.json")) == config
    assert not (tmp_path / "config.json.tmp").exists()


def test_load_reports_file_and_line(tmp_path):
    (tmp_path / "bad.json").write_text('{\n  "lstm_units": 3,\n  oops\n}')
    with pytest.raises(ValueError, match=r"bad.json:3: invalid JSON"):
        Config.load(str(tmp_path / "bad.json"))
    (tmp_path / "unknown.json").write_text('{"lstm_unit": 3}')
    with pytest.raises(ValueError, match="unknown config key.*lstm_unit"):
        Config.load(str(tmp_path / "unknown.json"))


EXPERIMENTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments")
NAMED_CONFIGS = sorted(name for name in os.listdir(EXPERIMENTS) if name.endswith(".json") and name != "results.json")


@pytest.mark.parametrize("name", NAMED_CONFIGS)
def test_every_named_config_loads(name):
    Config.load(os.path.join(EXPERIMENTS, name))


def test_serving_config_is_bilstm_crf_with_the_overrides_its_figures_were_measured_with():
    """results.json records bilstm_crf_128 as bilstm_crf.json plus these overrides."""
    base = Config.load(os.path.join(EXPERIMENTS, "bilstm_crf.json"))
    overridden = base.with_overrides(["lstm_units=128", "epochs=50", "patience=10"])
    assert Config.load(os.path.join(EXPERIMENTS, "bilstm_crf_128.json")) == overridden
