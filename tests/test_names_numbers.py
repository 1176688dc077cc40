"""Names matched in full against one allow-list, numbers finite and bounded, and every bad input one line
and exit 1: run and device names in configs, inventories, nightly configs and on the command line; NaN,
infinity and absurd values; files that are not UTF-8; `extends` that merges a value with a table; dates out
of range; digits that are not ASCII."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.core.names import check_name
from pipeline.devices.inventory import DeviceProfile, load_inventory
from pipeline.devices.transport.ssh import resolve_target
from pipeline.errors import UserError
from pipeline.nightly.nightly_config import load_nightly_config
from pipeline.results import ResultsStore
from pipeline.results.timeutil import parse_time
from pipeline.training.config import load_config
from tests.conftest import run_cli

BAD_NAMES = ["", ".", "..", "../x", "a/b", "a\\b", "demo\n", "demo\nx", " demo", "-x", ".hidden", "x" * 65,
             "d\x1b[31m", "dėmo", "a b", "$(id)"]


@pytest.mark.parametrize("name", ["demo", "rpi4", "coral-usb", "n.2025_01", "A" * 64])
def test_good_names_pass(name: str) -> None:
    assert check_name(name, "run.name") == name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_everywhere(name: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is not a valid name"):
        check_name(name, "run.name")
    config = tmp_path / "c.toml"
    config.write_text(f"[run]\nname = {_toml_string(name)}\n")
    with pytest.raises(UserError, match=r"run\.name = .* is not a valid name"):
        load_config(config)
    inventory = tmp_path / "devices.toml"
    inventory.write_text(f"[devices.{_toml_string(name)}]\n")
    with pytest.raises(UserError, match="device name = .* is not a valid name"):
        load_inventory(inventory)
    nightly = tmp_path / "nightly.toml"
    nightly.write_text(f"[nightly]\ndevices = [{_toml_string(name)}]\n")
    if name:  # an empty name has its own message
        with pytest.raises(UserError, match=r"nightly\.devices\[0\] = .* is not a valid name"):
            load_nightly_config(nightly)


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\x1b", "\\u001b") + '"'


@pytest.mark.parametrize("name", ["..", "../escaped"])
def test_a_run_name_cannot_write_outside_build(tmp_path: Path, name: str) -> None:
    """`..` passed the old check (no '/'): build/.. is the working folder, where the run's stages went."""
    config = tmp_path / "c.toml"
    config.write_text(f'[run]\nname = "{name}"\nbuild_dir = "{tmp_path / "work" / "build"}"\n')
    result = run_cli("data", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "is not a valid name" in result.stderr
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["c.toml"]  # nothing created anywhere


def test_bench_run_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    result = run_cli("bench", "--run", "demo\n", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "--run = 'demo\\n'" in result.stderr


@pytest.mark.parametrize("text, expected", [
    ("[finetune]\nlearning_rate = nan\n", r"finetune\.learning_rate = nan must be a finite number"),
    ("[pretrain]\ntemperature = inf\n", r"pretrain\.temperature = inf must be a finite number"),
    ("[finetune]\nlabel_fraction = nan\n", r"finetune\.label_fraction = nan must be a finite number"),
    ("[prune]\ntarget_sparsity = -inf\n", r"prune\.target_sparsity = -inf must be a finite number"),
    ("[model]\nwidth = 1e300\n", r"model\.width = 1e\+300 must be at most 64"),
    ("[finetune]\nepochs = 1000000000\n", r"finetune\.epochs = 1000000000 must be at most 100000"),
    ("[convert]\neval_samples = 0\n", r"convert\.eval_samples = 0 must be greater than 0"),
])
def test_config_numbers_are_finite_and_bounded(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=expected):
        load_config(path)


@pytest.mark.parametrize("text, expected", [
    ("min_s = inf", r"min_s = inf must be a finite number"),  # the agent would loop forever
    ("min_s = nan", r"min_s = nan must be a finite number"),  # nan < 0 is False: it passed the range check
    ("warmup_min_s = 1e12", r"warmup_min_s = 1000000000000.0 is outside \[0, 3600\]"),
    ("idle_s = 86400", r"idle_s = 86400.0 is outside \[0, 3600\]"),
    ("command_timeout_s = inf", r"command_timeout_s = inf must be a finite number"),
    ("runs = 9223372036854775807", r"runs = 9223372036854775807 is outside"),
    ("threads = 100000", r"threads = 100000 is outside \(0, 1024\]"),
    ("meter_options = { scale = nan }", r"meter_options\.scale = nan must be a finite number"),
    ("port = -1", r"port = -1 is not a TCP port"),
])
def test_inventory_numbers_are_finite_and_bounded(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(f"[devices.pi]\n{text}\n")
    with pytest.raises(UserError, match=expected):
        load_inventory(path)


def test_nightly_rule_numbers_are_finite(tmp_path: Path) -> None:
    path = tmp_path / "nightly.toml"
    path.write_text("[rules.latency_ms]\nthreshold = nan\n")
    with pytest.raises(UserError, match=r"rules\.latency_ms\.threshold = nan must be a finite number"):
        load_nightly_config(path)


@pytest.mark.parametrize("command", [["data", "--config"], ["nightly", "--config"], ["bench", "--devices"]])
def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[run]\nname = "caf\u00e9"\n'.encode("latin-1"))
    result = run_cli(*command, str(path), cwd=tmp_path)
    assert result.returncode in (1, 2) and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"{path}: not UTF-8 text (byte 17); save it as UTF-8 TOML" in result.stderr


@pytest.mark.parametrize("base, child, expected", [
    ("[run]\nname = 'a'\n", "extends = 'base.toml'\nrun = 3\n", "'run' is a value here but a table in base.toml"),
    ("run = 3\n", "extends = 'base.toml'\n[run]\nname = 'a'\n", "'run' is a table here but a value in base.toml"),
])
def test_extends_refuses_to_merge_a_value_with_a_table(tmp_path: Path, base: str, child: str, expected: str) -> None:
    (tmp_path / "base.toml").write_text(base)
    (tmp_path / "child.toml").write_text(child)
    with pytest.raises(UserError, match=expected):
        load_config(tmp_path / "child.toml")


@pytest.mark.parametrize("text, expected", [
    ("9999-12-31T23:00-05:00", "is out of range"),
    ("0001-01-01T00:00+05:00", "is out of range"),
    ("\u0662\u0660\u0662\u0665-\u0660\u0661-\u0660\u0661", "is not a date"),  # Arabic-Indic digits
    ("\uff12\uff10\uff12\uff15-01-01", "is not a date"),  # full-width digits
    ("2025-01-01T25:00", "is not a date"),
])
def test_dates_out_of_range_or_in_other_digits_are_one_line(text: str, expected: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=expected):
        parse_time(text, what="--since")
    result = run_cli("results", "--since", text, "--db", str(tmp_path / "r.db"), cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and expected in result.stderr


@pytest.mark.parametrize("value", ["\u0661\u0662", "\uff11\uff12", "99999999999999999999", "-1", "1e3"])
def test_run_ids_must_be_ascii_digits_that_fit(value: str, tmp_path: Path) -> None:
    result = run_cli("results", "--run", value, "--db", str(tmp_path / "r.db"), cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr == (f"error: argument --run: {value!r} is not a whole number (0-9 digits, at most "
                             f"{(1 << 63) - 1}); see python -m pipeline results --help\n")
    assert not (tmp_path / "r.db").exists()  # refused before anything was opened


@pytest.mark.parametrize("argv, message", [
    ([], "the following arguments are required: COMMAND; see python -m pipeline --help"),
    (["nosuch"], "argument COMMAND: invalid choice: 'nosuch'"),
    (["results", "--nosuch"], "unrecognized arguments: --nosuch; see python -m pipeline results --help"),
    (["results", "--run"], "argument --run: expected one argument; see python -m pipeline results --help"),
    (["baseline"], "the following arguments are required: ACTION; see python -m pipeline baseline --help"),
    (["baseline", "pin"], "the following arguments are required: run; see python -m pipeline baseline pin --help"),
    (["bench-results", "--count", "\u0663"], "argument --count: '\u0663' is not a whole number (0-9 digits"),
    (["bench-results", "--samples", "\uff13"], "argument --samples: '\uff13' is not a whole number (0-9 digits"),
    (["bench-agent", "--threads", "\u0967"], "argument --threads: '\u0967' is not a whole number"),  # Devanagari
    (["bench-nightly-noise", "--nights", "\u0663"], "argument --nights: '\u0663' is not a whole number"),
])
def test_argument_errors_are_one_line_and_exit_1(argv: list[str], message: str, capsys) -> None:
    """argparse's usage block and exit 2 are gone: one line with the fix, exit 1, like every other error."""
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and captured.err.startswith("error: ")
    assert message in captured.err and captured.err.rstrip().endswith("--help")


def test_nightly_argument_errors_keep_its_no_verdict_exit_code(capsys) -> None:
    assert main(["nightly", "--nosuch"]) == 2  # 1 would read as "a model regression" in CI
    assert capsys.readouterr().err == "error: unrecognized arguments: --nosuch; see python -m pipeline nightly --help\n"


def test_help_still_prints_and_exits_0() -> None:
    result = run_cli("results", "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m pipeline results")


@pytest.mark.parametrize("config_line, message", [
    ("Port \u0662\u0662", "Host board: port '\u0662\u0662' is not a TCP port (1-65535)"),
    ("Port twenty-two", "Host board: port 'twenty-two' is not a TCP port"),  # before: a ValueError traceback
    ("ProxyJump bastion:\u0662\u0662", "ProxyJump 'bastion:\u0662\u0662': port '\u0662\u0662' is not a TCP port"),
])
def test_ssh_config_ports_must_be_ascii_digits(config_line: str, message: str, tmp_path: Path) -> None:
    """int('٢٢') == 22: a port in other digits would silently connect somewhere; OpenSSH refuses it too."""
    config = tmp_path / "ssh_config"
    config.write_text(f"Host board\n  HostName 127.0.0.1\n  {config_line}\n")
    profile = DeviceProfile(name="board", transport="ssh", host="board", ssh_config=str(config))
    with pytest.raises(UserError) as refused:
        resolve_target(profile)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_baseline_pin_reads_other_digits_as_a_name(tmp_path: Path) -> None:
    with ResultsStore.open(str(tmp_path / "r.db")) as store:
        with store.recording("night", kind="nightly"):
            pass
        with pytest.raises(UserError, match="no complete run '\u0661'"):
            store.pin_baseline("\u0661")  # int('١') == 1, but this is not run 1
        with pytest.raises(UserError, match="no complete run '99999999999999999999'"):
            store.pin_baseline("99999999999999999999")
        assert store.pin_baseline("1")["id"] == 1
