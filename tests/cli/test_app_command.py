"""``@app.command()``: an app's own commands in ``python app.py --help``, with click
options (``streamkit.cli.option``, Faust's ``faust.cli.option``), run as Faust runs
them."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest

import streamkit
from streamkit.cli import app_main, option
from streamkit.types import TopicPartition

APP = textwrap.dedent('''
    import streamkit
    from streamkit.cli import option

    app = streamkit.App("cmdapp", topic_partitions=1)
    greetings = app.topic("greetings")

    @app.command(
        option("--count", type=int, default=3, help="How many to send."),
        option("--text", default="hello"),
    )
    async def produce(self, count: int, text: str) -> None:
        """Send greetings to the greetings topic."""
        for i in range(count):
            await greetings.send(key=str(i), value={"text": text})
        self.say(f"sent {count}")

    if __name__ == "__main__":
        app.main()
''')


def run_script(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, STREAMKIT_DATADIR=str(script.parent / "data"))
    env.pop("STREAMKIT_DEBUG", None)
    return subprocess.run([sys.executable, str(script), *args], env=env, cwd=script.parent,
                          capture_output=True, text=True, timeout=60)


def test_a_command_is_listed_and_runs_in_the_scripts_command_line(tmp_path: Path) -> None:
    script = tmp_path / "cmdapp.py"
    script.write_text(APP)
    listed = run_script(script, "--help")
    assert listed.returncode == 0, listed.stderr
    assert "produce" in listed.stdout and "Send greetings to the greetings topic." \
        in listed.stdout
    helped = run_script(script, "produce", "--help")
    assert "How many to send." in helped.stdout and "[default: 3]" in helped.stdout
    done = run_script(script, "produce", "--count", "2", "--text", "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "sent 2"
    broker = streamkit.App("reader", broker=f"log://{tmp_path / 'data'}/log").broker
    messages = broker.fetch(TopicPartition("greetings", 0), 0, 100)
    assert [(m.key, m.value) for m in messages] == [(b'"0"', b'{"text":"hi"}'),
                                                     (b'"1"', b'{"text":"hi"}')]


def run_main(app: streamkit.App, *argv: str) -> int:
    with pytest.raises(SystemExit) as exit_:
        app_main(app, list(argv))
    return int(exit_.value.code or 0)


def test_plain_functions_arguments_and_debug(capsys: pytest.CaptureFixture[str]) -> None:
    app = streamkit.App("cmdplain", broker="memory://cmdplain", store="memory://")
    seen: list[object] = []

    @app.command(streamkit.argument("name"), streamkit.option("--times", default=1))
    def greet(name: str, times: int) -> None:     # no ``self``: only the options
        """Greet NAME."""
        seen.append((name, times))

    @app.command(name="fail")
    def failing() -> None:
        raise ValueError("bad input")

    assert run_main(app, "greet", "bob", "--times", "2") == 0
    assert seen == [("bob", 2)]
    assert run_main(app, "fail") == 1
    assert "ValueError: bad input" in capsys.readouterr().err
    app.conf.debug = True          # Faust's debug=True: the traceback, not one line
    with pytest.raises(ValueError, match="bad input"):
        app_main(app, ["fail"])


def test_a_command_cannot_take_a_streamkit_commands_name() -> None:
    app = streamkit.App("cmdclash", broker="memory://cmdclash", store="memory://")

    @app.command()
    async def worker() -> None:
        pass
    with pytest.raises(click.UsageError, match="'worker'"):
        app_main(app, ["--help"])


def test_option_is_fausts_option_with_defaults_shown() -> None:
    assert streamkit.option is option

    @click.command()
    @option("--n", default=5)
    def command(n: int) -> None:
        pass
    assert command.params[0].show_default is True


def test_faust_cli_option_works_after_import_streamkit_as_faust() -> None:
    # a fresh interpreter: ``import streamkit`` does not load the command line, yet
    # ``faust.cli.option`` is how Faust scripts name it
    code = ("import streamkit as faust; o = faust.cli.option('--n', default=1); "
            "print(type(o).__name__, faust.option is faust.cli.option)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["option", "True"]
