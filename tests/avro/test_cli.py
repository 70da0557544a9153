"""`streamkit schemas list|show|register|check|compatibility|delete`."""
from __future__ import annotations

import json

from click.testing import CliRunner

from streamkit.cli.registry_commands import main


def write(path, fields: list[dict]) -> str:
    path.write_text(json.dumps({"type": "record", "name": "Ride", "namespace": "test",
                                "fields": fields}, indent=2))
    return str(path)


def test_register_show_check_list(tmp_path) -> None:
    base = ["schemas", "--broker", f"log://{tmp_path}/log"]
    v1 = write(tmp_path / "v1.avsc", [{"name": "vendor_id", "type": "string"}])
    v2 = write(tmp_path / "v2.avsc", [{"name": "vendor_id", "type": "string"},
                                      {"name": "tip", "type": "double", "default": 0.0}])
    bad = write(tmp_path / "bad.avsc", [{"name": "vendor_id", "type": "int"}])
    run = CliRunner().invoke

    r = run(main, base + ["register", "rides-value", v1])
    assert r.exit_code == 0 and "version 1, id 1" in r.output
    r = run(main, base + ["check", "rides-value", v2])
    assert r.exit_code == 0 and "compatible with rides-value (BACKWARD)" in r.output
    r = run(main, base + ["check", "rides-value", bad])
    assert r.exit_code == 1 and "Ride.vendor_id" in r.output and "TYPE_MISMATCH" in r.output
    r = run(main, base + ["register", "rides-value", bad])
    assert r.exit_code == 1 and "error 409" in r.output
    r = run(main, base + ["register", "rides-value", v2])
    assert r.exit_code == 0 and "version 2, id 2" in r.output
    r = run(main, base + ["show", "rides-value", "--version", "1"])
    assert r.exit_code == 0 and "version 1  id 1" in r.output
    assert json.loads(r.output.split("\n", 1)[1])["fields"][0]["name"] == "vendor_id"
    r = run(main, base + ["list"])
    assert r.exit_code == 0 and "rides-value\tversions 1,2\tlatest id 2" in r.output
    r = run(main, base + ["compatibility", "rides-value", "--set", "none"])
    assert r.exit_code == 0 and r.output.strip() == "NONE"
    r = run(main, base + ["register", "rides-value", bad])
    assert r.exit_code == 0 and "version 3" in r.output
    r = run(main, base + ["delete", "rides-value", "--version", "3"])
    assert r.exit_code == 0 and "soft-deleted versions 3" in r.output
    r = run(main, base + ["show", "nope"])
    assert r.exit_code == 1 and "error 40401" in r.output


def test_schemas_cli_through_the_rest_server(server, tmp_path) -> None:
    v1 = write(tmp_path / "v1.avsc", [{"name": "vendor_id", "type": "string"}])
    bad = write(tmp_path / "bad.avsc", [{"name": "vendor_id", "type": "int"}])
    base = ["schemas", "--registry", server["url"]]
    run = CliRunner().invoke
    r = run(main, base + ["register", "clihttp-value", v1])
    assert r.exit_code == 0 and "version 1" in r.output
    r = run(main, base + ["check", "clihttp-value", bad])
    assert r.exit_code == 1 and "Ride.vendor_id" in r.output
    r = run(main, base + ["register", "clihttp-value", bad])
    assert r.exit_code == 1 and "error 409" in r.output and "TYPE_MISMATCH" in r.output
    r = run(main, base + ["show", "clihttp-value"])
    assert r.exit_code == 0 and "version 1" in r.output
