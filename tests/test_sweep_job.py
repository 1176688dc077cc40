"""The sweep job on the session's micro run (every stage cached): a working device and one that cannot be reached.
The working one gets every variant and the interleaved A/Bs; the dead one is listed per variant, never invented."""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.results import ResultsStore
from tests.conftest import run_cli, write_toml
from tests.test_nightly_job import DEAD_DEVICE, LOCAL_DEVICE, PROCESS_TIMEOUT_S, _closed_port

VARIANTS = ["float", "ptq_int8", "pqat_int8"]


def test_a_sweep_records_every_variant_on_the_live_device_and_lists_the_dead_one(micro_run, tmp_path: Path) -> None:
    pipeline_config = write_toml(micro_run[0], tmp_path / "micro.toml")
    devices = tmp_path / "devices.toml"
    devices.write_text(LOCAL_DEVICE.format(workdir=tmp_path / "device")
                       + DEAD_DEVICE.format(port=_closed_port(), folder=tmp_path))
    config = tmp_path / "sweep.toml"
    config.write_text(f'[sweep]\nruns = ["{pipeline_config}"]\ndevices = ["local", "dead"]\n'
                      f'devices_file = "{devices}"\nresults_db = "{tmp_path / "results.db"}"\n'
                      f'reports_dir = "{tmp_path / "reports"}"\nab_rounds = 3\n')
    done = run_cli("sweep", "--config", str(config), timeout=PROCESS_TIMEOUT_S)
    assert done.returncode == 1, done.stderr[-3000:]  # some benchmarks failed: said in the exit code
    assert "micro: 0 stage(s) ran" in done.stderr
    rows = [line for line in done.stdout.splitlines() if line.split() and line.split()[0] in VARIANTS]
    assert [row.split()[0] for row in rows] == VARIANTS and all("not run" in row for row in rows)
    [folder] = (tmp_path / "reports").iterdir()
    document = json.loads((folder / "sweep.json").read_text())
    assert {(f["device"], f["variant"]) for f in document["failures"]} == {("dead", v) for v in VARIANTS}
    assert {(i["device"], i["variant"], i["rounds"]) for i in document["interleaved"]} == {
        ("local", "float", 3), ("local", "pqat_int8", 3)}
    assert all(i["low"] <= i["speedup"] <= i["high"] for i in document["interleaved"])
    assert document["against_baseline"]["pqat_int8"]["speedup"]["dead"] is None
    with ResultsStore.open(str(tmp_path / "results.db")) as store:
        [run] = store.runs(kind="sweep")
        assert run["status"] == "complete"
        assert sorted((r["device"], r["variant"]) for r in store.results(run_id=run["id"])) == sorted(
            ("local", v) for v in VARIANTS)
    page = (folder / "report.html").read_text()
    assert "Failed benchmarks" in page and page.count("<img ") == 2  # local latency + size; dead has no plot
