"""Inventory loading and validation: the shipped devices.toml, refusals that name file and key,
device selection and the command-line checks made before any device is contacted."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.devices.inventory import LOCAL_DEVICE, inventory_path, load_inventory, select_devices
from pipeline.errors import UserError

REPO = Path(__file__).resolve().parent.parent
SHIPPED_PROFILES = ["local", "rpi4", "rpi5", "coral-usb", "coral-devboard"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "devices.toml"
    path.write_text(text)
    return path


def test_shipped_inventory_has_the_documented_profiles():
    devices = load_inventory(REPO / "devices.toml")
    assert list(devices) == SHIPPED_PROFILES
    assert devices["local"].transport == "local" and devices["rpi4"].transport == "ssh"
    assert devices["coral-usb"].delegate == "edgetpu" and devices["rpi5"].energy_meter == "pi5-pmic"
    assert not any(profile.trust_on_first_use for profile in devices.values())


def test_embedded_local_device_without_any_inventory():
    [profile] = select_devices(load_inventory(None), [], False, None)
    assert (profile.name, profile.transport, profile.python_path()) == (LOCAL_DEVICE, "local", sys.executable)
    assert select_devices({}, [], True, None) == [profile]


@pytest.mark.parametrize("text, message", [
    ("[devices.pi]\nthreds = 4\n", r"devices\.toml: devices\.pi: unknown key 'threds' \(valid keys: .*threads"),
    ("[devices.pi]\nthreads = '4'\n", r"devices\.toml: devices\.pi\.threads must be int, got str '4'"),
    ("[devices.pi]\ntrust_on_first_use = 1\n", r"devices\.pi\.trust_on_first_use must be bool"),
    ("[devices.pi]\ntransport = 'telnet'\n", r"devices\.pi\.transport = 'telnet' is not valid; choose one of: local"),
    ("[devices.pi]\ndelegate = 'gpu'\n", r"devices\.pi\.delegate = 'gpu' is not valid.*absolute path"),
    ("[devices.pi]\nenergy_meter = 'ina'\n", r"energy_meter = 'ina' is not valid"),
    ("[devices.pi]\nthreads = 0\n", r"devices\.pi\.threads = 0 is outside \(0, 1024\]"),
    ("[devices.pi]\nport = 70000\n", r"devices\.pi\.port = 70000 is not a TCP port"),
    ("[devices.pi]\nconnect_retries = -1\n", r"connect_retries = -1 is outside \[0, 100\]"),
    ("[devices.pi]\nmeter_options = { channels = [1, 2] }\n", r"meter_options\.channels must be a string or number"),
    ("[devices.pi]\nname = 'x'\n", r"unknown key 'name' \(the device's name is its table name\)"),
    ("[devices.'pi 4']\n", r"device name = 'pi 4' is not a valid name"),
    ("[device.pi]\n", r"unknown key 'device' at top level"),
    ("[devices]\npi = 3\n", r"devices\.pi must be a table"),
    ("[devices.pi\n", r"not valid TOML"),
])
def test_invalid_inventory_is_refused_naming_file_and_key(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        load_inventory(write(tmp_path, text))


def test_unknown_device_names_the_known_ones(tmp_path):
    path = write(tmp_path, "[devices.pi]\nhost = 'pi.lan'\n")
    with pytest.raises(UserError, match=r"unknown device 'rpi9' \(known in .*devices\.toml: local, pi\); add a "
                                        r"\[devices\.rpi9\] table"):
        select_devices(load_inventory(path), ["pi", "rpi9"], False, path)


def test_inventory_from_environment_and_missing_file(tmp_path, monkeypatch):
    path = write(tmp_path, "[devices.pi]\n")
    monkeypatch.setenv("DEVICES", str(path))
    assert inventory_path() == path
    monkeypatch.setenv("DEVICES", str(tmp_path / "absent.toml"))
    with pytest.raises(UserError, match=r"absent\.toml \(from \$DEVICES\) does not exist"):
        inventory_path()
    assert inventory_path(str(path)) == path  # --devices wins over $DEVICES


@pytest.mark.parametrize("extra, message", [
    (["--model", "m.tflite"], "--model needs --samples"),
    (["--samples", "s.npz"], "--samples needs --model"),
    (["--all", "--device", "local"], "either --all or --device"),
    (["--run", "../x"], "not a valid name"),
    ([], r"build/demo/manifest\.json does not exist: run `make demo` first"),
    (["--model", "absent.tflite", "--samples", "absent.npz"], r"model absent\.tflite does not exist"),
])
def test_bench_command_line_mistakes_exit_1_with_one_line(tmp_path, monkeypatch, capsys, extra, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEVICES", raising=False)
    assert main(["bench", *extra]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ")
    assert re.search(message, error)


def test_the_run_manifest_names_the_model_and_the_compressed_variant_is_the_default(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "build" / "demo"
    run_dir.mkdir(parents=True)
    (run_dir / "f.tflite").write_bytes(b"model")
    made = {"float": {"accuracy": 0.9}, "pqat_int8": {"accuracy": 0.9}}
    (run_dir / "manifest.json").write_text(json.dumps({
        "run": "demo", "artifacts": {"float_tflite": "f.tflite"},
        "metrics": {"variants": made, "compressed_variant": "pqat_int8"}}))
    monkeypatch.chdir(tmp_path)
    assert main(["deploy"]) == 1
    assert "has no artifacts.pqat_int8_tflite" in capsys.readouterr().err
    assert main(["deploy", "--variant", "float"]) == 1
    assert "has no artifacts.float_samples" in capsys.readouterr().err
    assert main(["deploy", "--variant", "qat_int8"]) == 1
    assert "did not make variant 'qat_int8' (it made: float, pqat_int8)" in capsys.readouterr().err
    assert main(["deploy", "--variant", "int8"]) == 1  # argparse: --variant choices are the registry's names
    assert "invalid choice: 'int8'" in capsys.readouterr().err


def test_a_local_device_without_workdir_uses_the_user_cache(tmp_path, monkeypatch):
    inventory = tmp_path / "devices.toml"
    inventory.write_text('[devices.bench-here]\ntransport = "local"\n')
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    profiles = load_inventory(inventory)
    embedded = select_devices({}, [], False, None)[0]
    assert profiles["bench-here"].workdir == str(tmp_path / "cache" / "edge-pipeline" / "bench-here")
    assert embedded.workdir == str(tmp_path / "cache" / "edge-pipeline" / "local")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert load_inventory(inventory)["bench-here"].workdir == "~/.cache/edge-pipeline/bench-here"
